//! Documents to JetStream (next slice).
