pub mod commitlog;
pub mod message;
