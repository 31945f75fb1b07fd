//! Display ids: `adjective-dinosaur`, easy for people to tell apart. Drawn at
//! random, avoiding names already held by live sessions when possible.

use rand::seq::IndexedRandom;

const ADJECTIVES: [&str; 50] = [
    "brave", "calm", "clever", "cosmic", "crisp", "daring", "eager", "fancy", "fierce", "gentle",
    "giddy", "golden", "grand", "happy", "hardy", "humble", "jolly", "keen", "lively", "lucky",
    "mellow", "merry", "mighty", "nimble", "noble", "plucky", "polite", "proud", "quick", "quiet",
    "rapid", "rosy", "rustic", "shiny", "silent", "sleek", "smooth", "snowy", "spry", "steady",
    "stormy", "sunny", "swift", "tidy", "tough", "vivid", "wary", "witty", "zany", "zesty",
];

const DINOSAURS: [&str; 50] = [
    "allosaurus",
    "ankylosaurus",
    "apatosaurus",
    "archaeopteryx",
    "baryonyx",
    "brachiosaurus",
    "carnotaurus",
    "ceratosaurus",
    "coelophysis",
    "compsognathus",
    "corythosaurus",
    "deinonychus",
    "dilophosaurus",
    "diplodocus",
    "dracorex",
    "edmontosaurus",
    "gallimimus",
    "giganotosaurus",
    "hadrosaurus",
    "herrerasaurus",
    "iguanodon",
    "kentrosaurus",
    "lambeosaurus",
    "maiasaura",
    "megalosaurus",
    "microraptor",
    "minmi",
    "mosasaurus",
    "nodosaurus",
    "ornithomimus",
    "oviraptor",
    "pachycephalosaurus",
    "parasaurolophus",
    "pentaceratops",
    "plateosaurus",
    "protoceratops",
    "psittacosaurus",
    "pteranodon",
    "raptorex",
    "saltasaurus",
    "sauropelta",
    "spinosaurus",
    "stegosaurus",
    "styracosaurus",
    "suchomimus",
    "therizinosaurus",
    "torosaurus",
    "triceratops",
    "troodon",
    "velociraptor",
];

/// Picks a display id `taken` says is free (after a few tries any will do:
/// the session id stays the real identity).
pub fn pick<E>(mut taken: impl FnMut(&str) -> Result<bool, E>) -> Result<String, E> {
    let mut rng = rand::rng();
    let mut candidate = String::new();
    for _ in 0..32 {
        let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("brave");
        let dino = DINOSAURS.choose(&mut rng).copied().unwrap_or("troodon");
        candidate = format!("{adjective}-{dino}");
        if !taken(&candidate)? {
            return Ok(candidate);
        }
    }
    Ok(candidate)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_lowercase_words() {
        let name = super::pick(|_| Ok::<_, ()>(false)).unwrap();
        let parts: Vec<&str> = name.split('-').collect();
        assert_eq!(parts.len(), 2);
        assert!(
            parts
                .iter()
                .all(|p| p.chars().all(|c| c.is_ascii_lowercase()))
        );
    }
}
