//! Permission bits of a topic on a broker, with RocketMQ's values so that
//! operators read them the same way: 6 = read and write, 4 = read only,
//! 2 = write only, 0 = disabled.

use std::fmt;

use crate::validate::FieldError;

/// What clients may do with a topic's queues on one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perm(u32);

impl Perm {
    /// Consumers may read.
    pub const READ: u32 = 1 << 2;
    /// Producers may write.
    pub const WRITE: u32 = 1 << 1;
    /// Read and write: the default of a new topic.
    pub const READ_WRITE: Perm = Perm(Self::READ | Self::WRITE);

    /// Checks that only known bits are set; `field` names the field in the error.
    pub fn from_bits(field: &str, bits: u32) -> Result<Perm, FieldError> {
        if bits & !(Self::READ | Self::WRITE) != 0 {
            return Err(FieldError::new(
                field,
                format!(
                    "permission {bits} has unknown bits; allowed: 6 (rw), 4 (r), 2 (w), 0 (none)"
                ),
            ));
        }
        Ok(Perm(bits))
    }

    /// The raw bits, as they travel on the wire.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether consumers may read.
    pub fn readable(self) -> bool {
        self.0 & Self::READ != 0
    }

    /// Whether producers may write.
    pub fn writable(self) -> bool {
        self.0 & Self::WRITE != 0
    }
}

impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = if self.readable() { "r" } else { "-" };
        let w = if self.writable() { "w" } else { "-" };
        write!(f, "{r}{w}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bits_are_accepted() {
        for bits in [0, 2, 4, 6] {
            assert_eq!(Perm::from_bits("perm", bits).unwrap().bits(), bits);
        }
        let rw = Perm::from_bits("perm", 6).unwrap();
        assert!(rw.readable() && rw.writable());
        assert_eq!(rw.to_string(), "rw");
        assert_eq!(Perm::from_bits("perm", 4).unwrap().to_string(), "r-");
    }

    #[test]
    fn unknown_bits_are_refused_naming_the_field() {
        for bits in [1, 7, 8, 0xFFFF_FFFF] {
            let err = Perm::from_bits("topics[0].perm", bits).unwrap_err();
            assert_eq!(err.field, "topics[0].perm");
            assert!(err.to_string().contains(&bits.to_string()), "{err}");
        }
    }
}
