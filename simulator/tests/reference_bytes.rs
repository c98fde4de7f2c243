//! The records are byte-identical to Python `json.dumps` output: the nine examples of spec §1.5
//! (`shared/reference/simulator-messages.md`), copied verbatim, rebuilt from the model types
//! with the same tokens and times.

use chrono::NaiveDateTime;
use model::envelope::HeroEntry;
use simulator::messages::{Hit, Logger, micros};

const G: &str = "9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13";
const A: &str = "1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5";
const B: &str = "6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b";

// Spec §1.5, lib.server.lobby.
const STARTING_MATCH: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:04.518263", "name": "kafka.lib.server.lobby", "log_message": "Starting Match", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:04Z\", \"PAYLOAD\": {\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13\", \"PARTICIPANTS\": [\"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\", \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"], \"PARTICIPANTS_HEROS\": {\"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\": {\"token\": \"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\", \"id\": 191, \"attack\": 40992, \"health\": 141120}, \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\": {\"token\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\", \"id\": 70, \"attack\": 126900, \"health\": 1300000}}}, \"STATUS\": {\"GAME\": \"START\"}}"}"#;
const CLEANING: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:06.640118", "name": "kafka.lib.server.lobby", "log_message": "Cleaning Game Records", "task": {"game_token": "9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13", "user_token": "1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5"}}"#;
const TIMED_OUT: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:23:11.402776", "name": "kafka.lib.server.lobby", "log_message": "Game Timed Out", "task": "{\"TIMESTAMP\": \"2024-01-14T18:23:11Z\", \"PAYLOAD\": {\"GAME_TOKEN\": \"d41c8e0a-57b3-4c19-a6e2-8f0b9d3c7a25\"}, \"STATUS\": {\"GAME\": \"TIMED OUT\"}}"}"#;
// Spec §1.5, lib.server.game.
const ATTACK_1: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:04.771305", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:04.771092\", \"PAYLOAD\": {\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13\", \"USER_TOKEN\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\", \"ENEMY_DAMAGE\": 126900, \"ENEMY_HEALTH_PRIOR\": 141120, \"ENEMY_HEALTH_POST\": 14220}}}"}"#;
const ATTACK_2: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:05.215040", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:05.214877\", \"PAYLOAD\": {\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13\", \"USER_TOKEN\": \"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\", \"ENEMY_DAMAGE\": 40992, \"ENEMY_HEALTH_PRIOR\": 1300000, \"ENEMY_HEALTH_POST\": 1259008}}}"}"#;
const ATTACK_3: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:05.632598", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:05.632410\", \"PAYLOAD\": {\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13\", \"USER_TOKEN\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\", \"ENEMY_DAMAGE\": 126900, \"ENEMY_HEALTH_PRIOR\": 14220, \"ENEMY_HEALTH_POST\": 0}}}"}"#;
const DEAD_ENEMY: &str = r#"{"level": "ERROR", "timestamp": "2024-01-14T18:22:05.901520", "name": "kafka.lib.server.game", "log_message": "Attacked Dead Enemy", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:05.901337\", \"PAYLOAD\": {\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13\", \"USER_TOKEN\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"}, \"STATUS\": {\"ACTION\": \"NA\", \"DETAILS\": {\"ENEMY_TOKEN\": null, \"ENEMY_STATUS\": \"DEAD\"}}}"}"#;
// Spec §1.5, client.__main__.
const STARTING_SERVER: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:20:31.118904", "name": "kafka.client.__main__", "log_message": "Starting Web Socket Server"}"#;
const LISTENING: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:20:31.125377", "name": "kafka.client.__main__", "log_message": "Listening on 0.0.0.0:5678"}"#;

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").expect(s)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("ASCII")
}

#[test]
fn lobby_records_match_the_reference_bytes() {
    let lobby = Logger::new("lib.server.lobby");
    let heroes = [
        HeroEntry {
            token: B.into(),
            id: Some(191),
            attack: 40992,
            health: 141120,
        },
        HeroEntry {
            token: A.into(),
            id: Some(70),
            attack: 126900,
            health: 1_300_000,
        },
    ];
    let participants = [B.to_owned(), A.to_owned()];
    let at = t("2024-01-14T18:22:04.518263");
    assert_eq!(
        text(lobby.starting_match(at, t("2024-01-14T18:22:04"), G, &participants, &heroes)),
        STARTING_MATCH
    );
    assert_eq!(
        text(lobby.cleaning(t("2024-01-14T18:22:06.640118"), G, A)),
        CLEANING
    );
    let g2 = "d41c8e0a-57b3-4c19-a6e2-8f0b9d3c7a25";
    assert_eq!(
        text(lobby.timed_out(
            t("2024-01-14T18:23:11.402776"),
            t("2024-01-14T18:23:11.9"),
            g2
        )),
        TIMED_OUT
    );
}

#[test]
fn game_records_match_the_reference_bytes() {
    let game = Logger::new("lib.server.game");
    let hits = [
        (
            "2024-01-14T18:22:04.771305",
            "2024-01-14T18:22:04.771092",
            A,
            B,
            126_900,
            141_120,
            ATTACK_1,
        ),
        (
            "2024-01-14T18:22:05.215040",
            "2024-01-14T18:22:05.214877",
            B,
            A,
            40_992,
            1_300_000,
            ATTACK_2,
        ),
        (
            "2024-01-14T18:22:05.632598",
            "2024-01-14T18:22:05.632410",
            A,
            B,
            126_900,
            14_220,
            ATTACK_3,
        ),
    ];
    for (at, task_at, attacker, enemy, damage, prior, expected) in hits {
        let hit = Hit {
            game_token: G,
            attacker,
            enemy,
            damage,
            prior,
        };
        let (record, task) = game.attack(t(at), micros(t(task_at)), &hit);
        assert_eq!(text(record), expected);
        // The task string pushed to games:{g}:logs is the decoded `task` of the record.
        let env: model::envelope::Envelope<'_> = serde_json::from_str(expected).expect("envelope");
        let inner: String =
            serde_json::from_str(env.task.expect("task").get()).expect("string task");
        assert_eq!(task, inner);
    }
    let dead = game.dead_enemy(
        t("2024-01-14T18:22:05.901520"),
        micros(t("2024-01-14T18:22:05.901337")),
        G,
        A,
    );
    assert_eq!(text(dead), DEAD_ENEMY);
}

#[test]
fn start_up_records_match_the_reference_bytes() {
    let client = Logger::new("client.__main__");
    assert_eq!(
        text(client.starting_server(t("2024-01-14T18:20:31.118904"))),
        STARTING_SERVER
    );
    assert_eq!(
        text(client.listening(t("2024-01-14T18:20:31.125377"))),
        LISTENING
    );
}

#[test]
fn envelope_time_drops_a_zero_fraction_like_isoformat() {
    let client = Logger::new("client.__main__");
    let record = text(client.starting_server(t("2024-01-14T18:20:31")));
    assert!(
        record.contains(r#""timestamp": "2024-01-14T18:20:31", "#),
        "{record}"
    );
}
