//! Concurrent play: one task per player, each acting as the player's client *and* its server
//! connection (spec §2.1), polling Redis every `SERVER_SLEEP` like the original.
//!
//! A player's decisions (2 or 3 players, hero draws, targets, dead-enemy turns) come from its own
//! RNG stream (`SEED`, player index), so they repeat with the same seed; which lobby a player
//! lands in, and so who fights whom, depends on scheduling. Use [`crate::rounds`] for runs that
//! must repeat exactly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;

use crate::server::{Attack, GameError, Outcome, Server};
use crate::store::{Lobby, status};

/// The timing knobs of a player.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Poll interval (`SERVER_SLEEP`).
    pub step: Duration,
    /// Lobby timeout (`LOBBY_TIMEOUT`).
    pub lobby_timeout: Duration,
    /// A game whose attack log has not grown for this long is given up (a participant in another
    /// instance died): max(30 s, 100 steps).
    pub stall: Duration,
}

impl Pace {
    /// The pace for a server step and lobby timeout.
    pub fn new(step: Duration, lobby_timeout: Duration) -> Self {
        Pace {
            step,
            lobby_timeout,
            stall: (step * 100).max(Duration::from_secs(30)),
        }
    }
}

/// The decision stream of player `index`.
pub fn player_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Sleeps one step; false when shutdown came first.
async fn tick(pace: &Pace, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(pace.step) => true,
    }
}

/// Plays `games` games as player `index`; returns early (Ok) on shutdown.
pub async fn play(
    server: Arc<Server>,
    index: usize,
    games: u32,
    seed: u64,
    pace: Pace,
    shutdown: CancellationToken,
) -> Result<(), GameError> {
    let mut rng = player_rng(seed, index);
    let name = server.user_name(index);
    for game in 0..games {
        // Think time. Players that all start (and time out) together would each create a lobby
        // and never meet; real clients drift apart through network and login delays. So the
        // first game starts within half a lobby timeout, later ones within two steps.
        let think = if game == 0 {
            pace.lobby_timeout.mul_f64(rng.gen_range(0.0..0.5))
        } else {
            pace.step.mul_f64(rng.gen_range(0.0..2.0))
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(think) => {}
        }
        let user = server.login(&name).await?;
        let n: u8 = rng.gen_range(2..=3);
        let open = server.open_games(n).await?;
        let seat = server.enter(&user, n, open, &mut rng).await?;
        let g = seat.game.as_str();
        tracing::debug!(event = "player_joined", game = g, user = %user, hero = seat.hero, host = seat.host);

        // Lobby: check first, then sleep, like `wait_players`.
        let deadline = Instant::now() + pace.lobby_timeout;
        let started = loop {
            match server.store.try_start(g).await? {
                Lobby::Started => break true,
                Lobby::TimedOut => break false,
                Lobby::Waiting if Instant::now() > deadline => {
                    if server.store.time_out(g).await? {
                        break false;
                    }
                    // The game filled and started between the two checks.
                    break true;
                }
                Lobby::Waiting => {}
            }
            if !tick(&pace, &shutdown).await {
                return Ok(());
            }
        };

        let outcome = if started {
            server.log_starting_match(g).await?;
            server.store.set_status(g, status::IN_PROGRESS).await?;
            if !turns(&server, g, &user, &mut rng, &pace, &shutdown).await? {
                return Ok(());
            }
            Outcome::Completed
        } else {
            server.log_timed_out(g).await?;
            Outcome::TimedOut
        };
        // `clean_game`: the cleaning record comes 3 steps after the end, for every participant.
        for _ in 0..3 {
            if !tick(&pace, &shutdown).await {
                return Ok(());
            }
        }
        server.log_cleaning(g, &user).await?;
        if seat.host {
            server.finish(g, outcome);
        }
    }
    Ok(())
}

/// The turn loop of one participant until the game is `Completed`; false on shutdown.
async fn turns(
    server: &Server,
    g: &str,
    user: &str,
    rng: &mut ChaCha8Rng,
    pace: &Pace,
    shutdown: &CancellationToken,
) -> Result<bool, GameError> {
    let mut progress = (server.store.logs_len(g).await?, Instant::now());
    loop {
        if server.store.status(g).await?.as_deref() == Some(status::COMPLETED) {
            return Ok(true);
        }
        // `health_check`: one hero left ends the game.
        let alive = server.alive(g).await?;
        if alive.len() <= 1 {
            server.store.set_status(g, status::COMPLETED).await?;
            return Ok(true);
        }
        let my_turn = server.store.turn(g).await?.as_deref() == Some(user);
        if my_turn
            && alive.iter().any(|(u, _)| u == user)
            && server.attack(g, user, rng).await? == Attack::GameOver
        {
            return Ok(true);
        }
        let len = server.store.logs_len(g).await?;
        if len != progress.0 {
            progress = (len, Instant::now());
        } else if progress.1.elapsed() > pace.stall {
            tracing::warn!(
                event = "game_stalled",
                game = g,
                attacks = len,
                "no attack for {:?}; giving up",
                pace.stall
            );
            server.store.set_status(g, status::COMPLETED).await?;
            return Ok(true);
        }
        if !tick(pace, shutdown).await {
            return Ok(false);
        }
    }
}
