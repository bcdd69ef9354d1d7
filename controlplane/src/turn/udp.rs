//! TURN over UDP: one socket, one datagram per message.

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::allocation::{ClientKey, Transport};
use super::framing::MAX_FRAME;
use super::relay::{now_ms, Shared, OUT_BUF};
use super::server::ClientAction;

pub(crate) async fn serve(shared: Arc<Shared>, sock: Arc<UdpSocket>, stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; MAX_FRAME];
    let mut out = vec![0u8; OUT_BUF];
    let stop = super::stopped(stop);
    tokio::pin!(stop);
    loop {
        let (n, from) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(_) => { tokio::task::yield_now().await; continue; }
            },
            () = &mut stop => return,
        };
        let Some(input) = buf.get(..n) else { continue };
        let client = ClientKey { transport: Transport::Udp, addr: from };
        let action = shared.lock().handle_client(now_ms(), client, input, &mut out);
        match action {
            ClientAction::None => {}
            ClientAction::Reply(len) => {
                if let Some(msg) = out.get(..len) {
                    let _ = sock.send_to(msg, from).await;
                }
            }
            ClientAction::Relay { relay, peer, data } => shared.send_to_peer(relay, peer, data).await,
        }
    }
}
