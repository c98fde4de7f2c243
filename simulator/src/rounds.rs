//! Deterministic play (`DETERMINISTIC=true`): every game in one task, without sleeps.
//!
//! Play proceeds in rounds. In each round every player with games left, in index order, picks
//! 2 or 3 players, joins a random open lobby of this round for that size (or creates one) and
//! draws a hero; a lobby that fills is played out at once (turns in `games:{g}:order`), and the
//! lobbies still open at the end of the round time out. All decisions come from one RNG seeded
//! with `SEED` and only this run's games are joined, so the same seed gives the same games
//! (participants, heroes, targets, damage; see [`crate::server::GameRecord::decisions`]).
//! Tokens, timestamps and partitions are not part of that promise.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;

use crate::server::{Attack, GameError, Outcome, Server};
use crate::store::{Lobby, status};

struct OpenLobby {
    game: String,
    size: u8,
    /// (player index, user token, host)
    members: Vec<(usize, String, bool)>,
}

/// Plays `games` games for each of `players` players; returns early (Ok) on shutdown.
pub async fn play(
    server: Arc<Server>,
    players: usize,
    games: u32,
    seed: u64,
    shutdown: CancellationToken,
) -> Result<(), GameError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _round in 0..games {
        let mut open: Vec<OpenLobby> = Vec::new();
        for p in 0..players {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let user = server.login(&server.user_name(p)).await?;
            let n: u8 = rng.gen_range(2..=3);
            let candidates: Vec<String> = open
                .iter()
                .filter(|l| l.size == n)
                .map(|l| l.game.clone())
                .collect();
            let seat = server.enter(&user, n, candidates, &mut rng).await?;
            let at = match open.iter().position(|l| l.game == seat.game) {
                Some(i) => i,
                None => {
                    open.push(OpenLobby {
                        game: seat.game.clone(),
                        size: n,
                        members: Vec::new(),
                    });
                    open.len() - 1
                }
            };
            open[at].members.push((p, user, seat.host));
            if server.store.try_start(&seat.game).await? == Lobby::Started {
                let lobby = open.remove(at);
                play_out(&server, &lobby, &mut rng).await?;
            }
        }
        for lobby in open {
            server.store.time_out(&lobby.game).await?;
            for _ in &lobby.members {
                server.log_timed_out(&lobby.game).await?;
            }
            for (_, user, _) in &lobby.members {
                server.log_cleaning(&lobby.game, user).await?;
            }
            server.finish(&lobby.game, Outcome::TimedOut);
        }
    }
    Ok(())
}

/// A full lobby: every participant logs `Starting Match`, turns run until one hero is left,
/// then every participant logs `Cleaning Game Records`.
async fn play_out(
    server: &Server,
    lobby: &OpenLobby,
    rng: &mut ChaCha8Rng,
) -> Result<(), GameError> {
    let g = lobby.game.as_str();
    for _ in &lobby.members {
        server.log_starting_match(g).await?;
    }
    server.store.set_status(g, status::IN_PROGRESS).await?;
    loop {
        if server.alive(g).await?.len() <= 1 {
            server.store.set_status(g, status::COMPLETED).await?;
            break;
        }
        let Some(turn) = server.store.turn(g).await? else {
            break;
        };
        if server.attack(g, &turn, rng).await? == Attack::GameOver {
            break;
        }
    }
    for (_, user, _) in &lobby.members {
        server.log_cleaning(g, user).await?;
    }
    server.finish(g, Outcome::Completed);
    Ok(())
}
