//! Attach socket framing (SOCK_SEQPACKET).
//!
//! Output from the container reaches every attached client as one packet per
//! chunk: byte 0 is the stream id, the rest is the payload (at most
//! [`MAX_PAYLOAD`] bytes). Input from clients is raw bytes, no framing.

/// Stream id for stdin (defined by the protocol, never sent to clients).
pub const STREAM_STDIN: u8 = 1;
/// Stream id for stdout, and for everything read from a terminal.
pub const STREAM_STDOUT: u8 = 2;
/// Stream id for stderr.
pub const STREAM_STDERR: u8 = 3;
/// Largest payload of one output packet; Podman reads with an 8193-byte buffer.
pub const MAX_PAYLOAD: usize = 8192;
/// Largest input packet the monitor reads from a client in one go.
pub const MAX_INPUT: usize = 32768;

/// Which container stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The attach framing id of this stream.
    pub fn id(self) -> u8 {
        match self {
            Stream::Stdout => STREAM_STDOUT,
            Stream::Stderr => STREAM_STDERR,
        }
    }

    /// The name used in k8s-file records.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// Decode an attach framing id (stdin is not an output stream).
    pub fn from_id(id: u8) -> Option<Stream> {
        match id {
            STREAM_STDOUT => Some(Stream::Stdout),
            STREAM_STDERR => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// Split one received attach packet into its stream and payload.
pub fn decode_frame(packet: &[u8]) -> Option<(Stream, &[u8])> {
    let (&id, payload) = packet.split_first()?;
    Some((Stream::from_id(id)?, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode() {
        assert_eq!(decode_frame(b"\x02hi"), Some((Stream::Stdout, &b"hi"[..])));
        assert_eq!(decode_frame(b"\x03"), Some((Stream::Stderr, &b""[..])));
        assert_eq!(decode_frame(b"\x01x"), None);
        assert_eq!(decode_frame(b""), None);
    }
}
