//! Damage to files, for fuzzing decoders of what the queue keeps on disk:
//! a proptest strategy of byte flips, overwrites and cuts, and applying one
//! to a file's bytes.

use proptest::prelude::*;

/// What to do to one file.
#[derive(Debug, Clone)]
pub enum Damage {
    /// Xor bytes from a position on.
    Flip {
        at: prop::sample::Index,
        bytes: Vec<u8>,
    },
    /// Overwrite from a position on.
    Overwrite {
        at: prop::sample::Index,
        bytes: Vec<u8>,
    },
    /// Cut the file at a position.
    Cut { at: prop::sample::Index },
}

/// Any damage, touching up to 64 bytes.
pub fn damage() -> impl Strategy<Value = Damage> {
    let bytes = proptest::collection::vec(any::<u8>(), 1..64);
    prop_oneof![
        (any::<prop::sample::Index>(), bytes.clone())
            .prop_map(|(at, bytes)| Damage::Flip { at, bytes }),
        (any::<prop::sample::Index>(), bytes)
            .prop_map(|(at, bytes)| Damage::Overwrite { at, bytes }),
        any::<prop::sample::Index>().prop_map(|at| Damage::Cut { at }),
    ]
}

impl Damage {
    /// Damages `content` in place (an empty one stays empty).
    pub fn apply(&self, content: &mut Vec<u8>) {
        if content.is_empty() {
            return;
        }
        match self {
            Damage::Flip { at, bytes } | Damage::Overwrite { at, bytes } => {
                let at = at.index(content.len());
                for (slot, byte) in content[at..].iter_mut().zip(bytes) {
                    match self {
                        Damage::Flip { .. } => *slot ^= byte,
                        _ => *slot = *byte,
                    }
                }
            }
            Damage::Cut { at } => content.truncate(at.index(content.len())),
        }
    }

    /// Damages the file at `path`.
    pub fn apply_to_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut content = std::fs::read(path)?;
        self.apply(&mut content);
        std::fs::write(path, content)
    }
}
