//! Who listens on a loopback port. A client that read this machine's hub
//! credential from the hub's token file sends it to a loopback port only
//! when the process listening there runs as the user who owns that file: a
//! program that took the hub's port first (port squatting), as another
//! user, gets nothing. Checked before each new connection, by
//! [`OwnerGuard`] in the client's connector.
//!
//! Linux reads `/proc/net/tcp` and `/proc/net/tcp6`; where they are absent
//! (another system) no listener is found and nothing is refused.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::config::{Discovery, TokenSource};

/// What the connector's error type boxes.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The credential was withheld: another user listens on the port.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "refused to send this machine's hub credential to port {port}: the program listening there \
     runs as uid {found}, not as the hub's user (uid {expected}, who owns {file}). Another \
     program holds the hub's port: stop it and start the hub, or set AGENT_EVENT_BUS_URL to \
     where the hub listens"
)]
pub struct ForeignListener {
    pub port: u16,
    pub found: u32,
    pub expected: u32,
    pub file: String,
}

/// The owners (uids) of the TCP sockets listening on `port` that a
/// connection to a loopback address could reach (bound to loopback or to
/// every address), IPv4 and IPv6.
pub fn listener_uids(port: u16) -> Vec<u32> {
    let mut uids = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            uids.extend(listeners_in(&text, port));
        }
    }
    uids
}

/// The uids of the listening sockets on `port` in one `/proc/net/tcp*`
/// table, reachable from loopback.
fn listeners_in(table: &str, port: u16) -> impl Iterator<Item = u32> + '_ {
    // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid …
    table.lines().skip(1).filter_map(move |line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        let (local, state, uid) = (columns.get(1)?, columns.get(3)?, columns.get(7)?);
        // 0A: TCP_LISTEN.
        if *state != "0A" {
            return None;
        }
        let (address, local_port) = local.split_once(':')?;
        if u16::from_str_radix(local_port, 16).ok()? != port {
            return None;
        }
        let ip = parse_address(address)?;
        let reachable = ip.is_loopback()
            || ip.is_unspecified()
            || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_unspecified()));
        if !reachable {
            return None;
        }
        uid.parse().ok()
    })
}

/// An address as the kernel prints it: 32-bit words in hex, each in the
/// machine's byte order.
fn parse_address(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| {
        hex.get(i * 8..i * 8 + 8)
            .and_then(|w| u32::from_str_radix(w, 16).ok())
            .map(u32::to_ne_bytes)
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// Refuses a connection to a loopback `port` held by anyone but `uid`.
#[derive(Debug, Clone)]
pub struct OwnerGuard {
    port: u16,
    uid: u32,
    file: Arc<PathBuf>,
}

impl OwnerGuard {
    /// A guard for the credential read from `file` (its owner is the hub's
    /// user); `None` when the file's owner cannot be read.
    pub fn new(port: u16, file: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata(file).ok()?.uid();
        Some(Self {
            port,
            uid,
            file: Arc::new(file.to_owned()),
        })
    }

    /// The guard a client to `endpoint` needs: one when it presents this
    /// machine's token file to a loopback port, else `None` (a token given
    /// explicitly is sent as given).
    pub fn for_credential(endpoint: &url::Url, credential: &Discovery) -> Option<Self> {
        let TokenSource::File(file) = &credential.credential()?.source else {
            return None;
        };
        if !crate::config::is_loopback_url(endpoint) {
            return None;
        }
        Self::new(endpoint.port_or_known_default()?, file)
    }

    /// Ok when every listener on the port is the hub's user's (or none is
    /// found).
    pub fn check(&self) -> Result<(), ForeignListener> {
        match listener_uids(self.port)
            .into_iter()
            .find(|&uid| uid != self.uid)
        {
            None => Ok(()),
            Some(found) => Err(ForeignListener {
                port: self.port,
                found,
                expected: self.uid,
                file: self.file.display().to_string(),
            }),
        }
    }
}

impl<S> tower_layer::Layer<S> for OwnerGuard {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            inner,
            guard: self.clone(),
        }
    }
}

/// A connector that runs [`OwnerGuard::check`] before each connection.
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    guard: OwnerGuard,
}

impl<S, R> tower_service::Service<R> for Guarded<S>
where
    S: tower_service::Service<R>,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        if let Err(refused) = self.guard.check() {
            return Box::pin(std::future::ready(Err(Box::new(refused).into())));
        }
        let connecting = self.inner.call(request);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_read_from_the_kernel_tables() {
        // 127.0.0.1:8080 listening (uid 1000), 0.0.0.0:8080 listening (uid
        // 33), 10.0.0.5:8080 listening (uid 7, unreachable from loopback),
        // 127.0.0.1:8080 established (uid 1000, not a listener), and
        // 127.0.0.1:9090 listening (another port).
        let lo = u32::from_ne_bytes([127, 0, 0, 1]);
        let other = u32::from_ne_bytes([10, 0, 0, 5]);
        let v4 = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: {lo:08X}:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1\n\
             1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 2\n\
             2: {other:08X}:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     7        0 3\n\
             3: {lo:08X}:1F90 {lo:08X}:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4\n\
             4: {lo:08X}:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000    12        0 5\n"
        );
        assert_eq!(listeners_in(&v4, 8080).collect::<Vec<_>>(), [1000, 33]);
        let one = Ipv6Addr::LOCALHOST.octets();
        let mut words = String::new();
        for w in one.chunks(4) {
            words.push_str(&format!(
                "{:08X}",
                u32::from_ne_bytes([w[0], w[1], w[2], w[3]])
            ));
        }
        let v6 = format!(
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: {words}:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  501        0 1\n"
        );
        assert_eq!(listeners_in(&v6, 8080).collect::<Vec<_>>(), [501]);
        assert_eq!(listeners_in("garbage\nmore garbage", 8080).count(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_port_this_process_listens_on_is_its_own() {
        use std::os::unix::fs::MetadataExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = rustix::process::geteuid().as_raw();
        assert!(listener_uids(port).contains(&me));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "t").unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().uid(), me);
        let guard = OwnerGuard::new(port, &file).unwrap();
        assert!(guard.check().is_ok());
    }
}
