//! The hero table (spec §4), generated from a seed.
//!
//! The original loads 732 heroes from superheroapi.com; that data is not ours to ship, so we draw
//! a table with the same ids (1..=732), the same cleaning rule (a missing stat counts as 1) and
//! the same formulas: `health = intelligence × strength × durability × 10`,
//! `attack = speed × power × combat`. 102 heroes have every stat missing (health 10, attack 1),
//! like the original data; every other stat is 1..=100, a few of them missing, drawn so that
//! games last about as long as with the original table. Every instance
//! writes the table drawn from [`TABLE_SEED`], so simulators scaled side by side agree on it.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Number of heroes (`HLEN superheros` of the original).
pub const HERO_COUNT: u16 = 732;
/// Heroes whose six stats are all missing in the original data.
pub const ALL_MISSING: usize = 102;
/// Seed of the table every instance writes (independent of `SEED`, see the module doc).
pub const TABLE_SEED: u64 = 0x5eed_4e70;

/// A hero's cleaned power stats plus the derived `health` and `attack`, in the original's key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Powerstats {
    /// 1..=100.
    pub intelligence: u64,
    /// 1..=100.
    pub strength: u64,
    /// 1..=100.
    pub speed: u64,
    /// 1..=100.
    pub durability: u64,
    /// 1..=100.
    pub power: u64,
    /// 1..=100.
    pub combat: u64,
    /// `intelligence × strength × durability × 10` (10..=10,000,000).
    pub health: u64,
    /// `speed × power × combat` (1..=1,000,000).
    pub attack: u64,
}

/// One row of `superheros` (the JSON object stored under field `id`, minus `response` and `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hero {
    /// Hero id 1..=732 (the hash field, not part of the stored JSON).
    #[serde(skip)]
    pub id: u16,
    /// Display name.
    pub name: String,
    /// Stats.
    pub powerstats: Powerstats,
}

/// The whole table, index `id - 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeroTable(Vec<Hero>);

impl HeroTable {
    /// Draws the table from `seed`; the same seed always gives the same table.
    pub fn generate(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ids: Vec<u16> = (1..=HERO_COUNT).collect();
        ids.shuffle(&mut rng);
        let blank: std::collections::HashSet<u16> = ids[..ALL_MISSING].iter().copied().collect();
        let heroes = (1..=HERO_COUNT)
            .map(|id| {
                // About 4% of single stats are "null" in the source data, which cleans to 1.
                // `skew` < 1 pulls a stat towards 100: with the attack stats (speed, power,
                // combat) at 0.7 and the health stats uniform, the medians (attack ~94k, health
                // ~386k) and the attacks per game (2 players: 29% one-hit, median 2, mean ~14)
                // come close to the original table's (spec §2.3, §4).
                let stat = |rng: &mut ChaCha8Rng, skew: f64| -> u64 {
                    if rng.gen_bool(0.04) {
                        return 1;
                    }
                    let u: f64 = rng.r#gen();
                    (1.0 + (99.0 * u.powf(skew)).floor()).clamp(1.0, 100.0) as u64
                };
                let [intelligence, strength, speed, durability, power, combat] =
                    if blank.contains(&id) {
                        [1; 6]
                    } else {
                        let (i, st, du) = (
                            stat(&mut rng, 1.0),
                            stat(&mut rng, 1.0),
                            stat(&mut rng, 1.0),
                        );
                        let (sp, po, co) = (
                            stat(&mut rng, 0.7),
                            stat(&mut rng, 0.7),
                            stat(&mut rng, 0.7),
                        );
                        [i, st, sp, du, po, co]
                    };
                Hero {
                    id,
                    name: format!("Hero {id}"),
                    powerstats: Powerstats {
                        intelligence,
                        strength,
                        speed,
                        durability,
                        power,
                        combat,
                        health: intelligence * strength * durability * 10,
                        attack: speed * power * combat,
                    },
                }
            })
            .collect();
        HeroTable(heroes)
    }

    /// The hero with `id` (1..=732).
    pub fn get(&self, id: u16) -> Option<&Hero> {
        self.0.get(usize::from(id).checked_sub(1)?)
    }

    /// Every hero, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Hero> {
        self.0.iter()
    }

    /// Number of heroes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false (the table has 732 heroes).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `(field, value)` pairs for `HSET superheros`: id as a string → Python-style JSON object.
    pub fn redis_fields(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|h| {
                (
                    h.id.to_string(),
                    crate::pyjson::to_string(h).expect("plain struct"),
                )
            })
            .collect()
    }

    /// A random hero id, like `randint(1, HLEN superheros)`.
    pub fn random_id<R: Rng>(&self, rng: &mut R) -> u16 {
        rng.gen_range(1..=HERO_COUNT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_the_same_table_and_another_seed_does_not() {
        assert_eq!(HeroTable::generate(7), HeroTable::generate(7));
        assert_ne!(HeroTable::generate(7), HeroTable::generate(8));
    }

    #[test]
    fn table_has_the_reference_ids_ranges_and_formulas() {
        let table = HeroTable::generate(TABLE_SEED);
        assert_eq!(table.len(), 732);
        let ids: Vec<u16> = table.iter().map(|h| h.id).collect();
        assert_eq!(ids, (1..=732).collect::<Vec<_>>());
        for h in table.iter() {
            let p = h.powerstats;
            for s in [
                p.intelligence,
                p.strength,
                p.speed,
                p.durability,
                p.power,
                p.combat,
            ] {
                assert!((1..=100).contains(&s), "hero {} stat {s}", h.id);
            }
            assert_eq!(p.health, p.intelligence * p.strength * p.durability * 10);
            assert_eq!(p.attack, p.speed * p.power * p.combat);
            assert!((10..=10_000_000).contains(&p.health));
            assert!((1..=1_000_000).contains(&p.attack));
        }
        let blank = table
            .iter()
            .filter(|h| h.powerstats.health == 10 && h.powerstats.attack == 1)
            .count();
        assert!(
            (ALL_MISSING..ALL_MISSING + 5).contains(&blank),
            "{blank} all-missing heroes"
        );
        // A realistic spread: the median attack is in the tens of thousands like the original.
        let mut attacks: Vec<u64> = table.iter().map(|h| h.powerstats.attack).collect();
        attacks.sort_unstable();
        assert!(
            (20_000..200_000).contains(&attacks[366]),
            "median attack {}",
            attacks[366]
        );
    }

    #[test]
    fn stored_json_matches_the_reference_shape() {
        let table = HeroTable::generate(1);
        let (field, json) = &table.redis_fields()[69];
        assert_eq!(field, "70");
        let p = table.get(70).expect("hero 70").powerstats;
        assert_eq!(
            json,
            &format!(
                "{{\"name\": \"Hero 70\", \"powerstats\": {{\"intelligence\": {}, \"strength\": {}, \"speed\": {}, \"durability\": {}, \"power\": {}, \"combat\": {}, \"health\": {}, \"attack\": {}}}}}",
                p.intelligence,
                p.strength,
                p.speed,
                p.durability,
                p.power,
                p.combat,
                p.health,
                p.attack
            )
        );
    }
}
