//! The in-memory datagram transport openssl reads from and writes to.
//!
//! openssl sees a `Read + Write` stream; datagram boundaries survive because
//! every `read` hands over exactly one datagram and writes are packed into
//! datagrams no larger than the MTU openssl was told about.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

#[derive(Debug)]
pub(crate) struct DatagramTransport {
    /// At most one datagram: the server feeds openssl each datagram as it arrives.
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
    /// Records written since the last seal; they leave together as one datagram.
    pending: Vec<u8>,
    mtu: usize,
}

impl DatagramTransport {
    pub fn new(mtu: usize) -> Self {
        Self {
            incoming: VecDeque::new(),
            outgoing: VecDeque::new(),
            pending: Vec::new(),
            mtu,
        }
    }

    pub fn push_incoming(&mut self, datagram: &[u8]) {
        // A zero-length read would look like end-of-stream to openssl and fail
        // the session; an empty datagram carries no record anyway.
        if !datagram.is_empty() {
            self.incoming.push_back(datagram.to_vec());
        }
    }

    /// Drops input openssl did not consume, so a failed call cannot leak a
    /// datagram into the next one.
    pub fn clear_incoming(&mut self) {
        self.incoming.clear();
    }

    /// Ends the datagram being packed; called after every openssl call so
    /// nothing waits for a flush openssl may never issue (application data).
    pub fn seal(&mut self) {
        if !self.pending.is_empty() {
            self.outgoing.push_back(std::mem::take(&mut self.pending));
        }
    }

    pub fn pop_outgoing(&mut self) -> Option<Vec<u8>> {
        self.outgoing.pop_front()
    }
}

impl Read for DatagramTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.incoming.pop_front() {
            // Datagram semantics: whatever does not fit is lost, as with recv(2).
            Some(datagram) => {
                let n = datagram.len().min(buf.len());
                buf[..n].copy_from_slice(&datagram[..n]);
                Ok(n)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for DatagramTransport {
    /// Every write is whole records. Writes between flushes share a datagram
    /// while they fit the MTU: after the handshake openssl writes each
    /// application record without a flush.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.pending.is_empty() && self.pending.len() + buf.len() > self.mtu {
            self.seal();
        }
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// During the handshake openssl buffers a datagram's worth of records and
    /// flushes once per datagram (it sizes them to its MTU itself): a flush is
    /// a datagram boundary it relies on, e.g. a retransmission is not packed
    /// with the flight that follows it.
    fn flush(&mut self) -> io::Result<()> {
        self.seal();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_datagram_at_a_time() {
        let mut t = DatagramTransport::new(100);
        t.push_incoming(&[1, 2, 3]);
        t.push_incoming(&[4]);
        let mut buf = [0u8; 2];
        assert_eq!(t.read(&mut buf).unwrap(), 2, "truncated like recv");
        let mut buf = [0u8; 10];
        assert_eq!(t.read(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], 4);
        assert_eq!(
            t.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn packs_writes_up_to_mtu() {
        let mut t = DatagramTransport::new(10);
        t.write_all(&[1; 4]).unwrap();
        t.write_all(&[2; 6]).unwrap();
        t.write_all(&[3; 1]).unwrap();
        t.write_all(&[4; 20]).unwrap(); // oversized record: alone in its datagram
        t.write_all(&[5; 2]).unwrap();
        t.flush().unwrap();
        t.write_all(&[6; 1]).unwrap();
        t.seal();
        t.seal();
        t.push_incoming(&[]);
        assert_eq!(
            t.read(&mut [0u8; 4]).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let out: Vec<_> = std::iter::from_fn(|| t.pop_outgoing()).collect();
        assert_eq!(
            out.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![10, 1, 20, 2, 1]
        );
    }
}
