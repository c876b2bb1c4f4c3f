//! `AppendStream` without HTTP/2: the same messages as length-prefixed frames
//! on a plain TCP connection to the peer port
//! (docs/adr/0024-framed-append-stream.md; the wire format is in raft.proto).
//!
//! Over HTTP/2 an append crosses three tasks on the leader (openraft's
//! replication task, hyper's body pipe, the connection's task) and two on
//! the follower, and its reply as many on the way back; each is a wake-up
//! and a poll on a machine where those are what a one-client write waits
//! for. Here the leader's writer task writes the socket itself, openraft's
//! replication task reads the replies from it, and on the follower
//! openraft's stream task reads the requests while one task writes the
//! replies.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_proto::raft::{AppendHello, AppendReply, RaftPayload};
use futures::{FutureExt, Stream, StreamExt};
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
use prost::Message;
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf,
};
use tokio::net::TcpStream;

use super::peer_service::PeerService;
use super::types::{decode, encode, TypeConfig};

/// What a connection carrying an append stream starts with. HTTP/2's preface
/// starts with `P` and a TLS handshake with 0x16, never 0; and it is as long
/// as HTTP/2's, so a server of an older build that reads it as HTTP answers
/// at once with an error instead of waiting for more.
pub const PREFACE: &[u8; 24] = b"\0AEGIS append stream v1\n";

/// The largest message either side accepts: the peer service's limit.
pub const MAX_FRAME: usize = 64 << 20;

/// How long a follower waits for the leader's hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("a frame of {0} bytes, over the {MAX_FRAME}-byte limit")]
    TooLarge(u64),
    #[error("an undecodable frame: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("not an append stream")]
    Preface,
    #[error("the connection closed before the handshake ended")]
    Closed,
}

/// Reads one message; `None` when the connection ends between two frames.
pub async fn read_message<M, R>(r: &mut R) -> Result<Option<M>, FrameError>
where
    M: Message + Default,
    R: AsyncRead + Unpin,
{
    let mut len = [0u8; 4];
    if r.read(&mut len[..1]).await? == 0 {
        return Ok(None);
    }
    r.read_exact(&mut len[1..]).await?;
    let len = u64::from(u32::from_be_bytes(len));
    if len > MAX_FRAME as u64 {
        return Err(FrameError::TooLarge(len));
    }
    // Grown as bytes arrive: a length alone does not make this side allocate.
    let mut buf = Vec::with_capacity(len.min(64 << 10) as usize);
    (&mut *r).take(len).read_to_end(&mut buf).await?;
    if buf.len() as u64 != len {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Some(M::decode(buf.as_slice())?))
}

/// Appends `m` as one frame to `buf`.
pub fn put_message<M: Message>(buf: &mut Vec<u8>, m: &M) -> Result<(), FrameError> {
    let len = m.encoded_len();
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len as u64));
    }
    buf.reserve(4 + len);
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    m.encode(buf)
        .map_err(|e| FrameError::Io(io::Error::other(e.to_string())))
}

/// The follower's half of the handshake: the preface, then the hello.
pub async fn read_hello<R: AsyncRead + Unpin>(r: &mut R) -> Result<AppendHello, FrameError> {
    let mut preface = [0u8; PREFACE.len()];
    r.read_exact(&mut preface).await?;
    if &preface != PREFACE {
        return Err(FrameError::Preface);
    }
    read_message(r).await?.ok_or(FrameError::Closed)
}

/// A refusal as a frame: the status's code and message.
pub fn refusal(status: &tonic::Status) -> AppendReply {
    AppendReply {
        data: Vec::new(),
        refused_code: status.code() as i32,
        refused: status.message().to_string(),
    }
}

/// The frame as a reply, or as the status it refuses with.
fn reply_or_status(r: AppendReply) -> Result<RaftPayload, tonic::Status> {
    if r.refused_code == 0 && r.refused.is_empty() {
        return Ok(RaftPayload { data: r.data });
    }
    Err(tonic::Status::new(
        tonic::Code::from_i32(r.refused_code),
        r.refused,
    ))
}

/// Serves one append stream a peer opened, from its preface on.
pub async fn serve<C>(conn: C, peer: Arc<PeerService>)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, mut wr) = tokio::io::split(conn);
    let mut rd = BufReader::new(rd);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut rd)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(e)) => {
            tracing::debug!("closing a peer connection: {e}");
            return;
        }
        Err(_) => return,
    };
    let mut buf = Vec::new();
    let checked = peer.check_expected(hello.expected_incarnation);
    let answer = checked
        .as_ref()
        .map_or_else(refusal, |()| AppendReply::default());
    if put_message(&mut buf, &answer).is_err() || wr.write_all(&buf).await.is_err() {
        return;
    }
    if checked.is_err() {
        // Appends may have come right behind the hello. Closing with them
        // unread would reset the connection, and the reset can reach the
        // leader before the refusal does: read them away first.
        let _ = wr.shutdown().await;
        let mut sink = tokio::io::sink();
        let drained = tokio::io::copy(&mut rd, &mut sink);
        let _ = tokio::time::timeout(HELLO_TIMEOUT, drained).await;
        return;
    }
    let refused = Arc::new(Mutex::new(None));
    let requests = requests_from(rd, Arc::clone(&refused));
    let replies = peer.consensus.raft.stream_append(requests).map(|r| {
        timeline!("f_reply", 0);
        r.map_err(|fatal| fatal.to_string())
    });
    write_replies(wr, replies, refused).await;
}

/// The requests of a stream until the first that cannot be decoded (kept in
/// `refused`, answered after the replies to everything before it) or the
/// end of the connection.
fn requests_from<R>(
    rd: BufReader<R>,
    refused: Arc<Mutex<Option<AppendReply>>>,
) -> impl Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static
where
    R: AsyncRead + Send + Unpin + 'static,
{
    Box::pin(futures::stream::unfold(Some(rd), move |rd| {
        let refused = Arc::clone(&refused);
        async move {
            let mut rd = rd?;
            let why = match read_message::<RaftPayload, _>(&mut rd).await {
                Ok(Some(p)) => match decode::<AppendEntriesRequest<TypeConfig>>(&p.data) {
                    Ok(req) => {
                        timeline!("f_recv", req.entries.len());
                        return Some((req, Some(rd)));
                    }
                    Err(e) => format!("undecodable peer message: {e}"),
                },
                Ok(None) => return None,
                Err(FrameError::Io(_)) => return None,
                Err(e) => e.to_string(),
            };
            if let Ok(mut slot) = refused.lock() {
                *slot = Some(refusal(&tonic::Status::invalid_argument(why)));
            }
            None
        }
    }))
}

/// Writes each item of `items` as a frame as it comes, with any others
/// already waiting in the same write. False when an item could not be
/// framed or the connection failed.
async fn write_gathered<W, T, M>(
    wr: &mut WriteHalf<W>,
    items: impl Stream<Item = T>,
    frame: impl Fn(T) -> Option<M>,
) -> bool
where
    W: AsyncRead + AsyncWrite,
    M: Message,
{
    let items = items.fuse();
    futures::pin_mut!(items);
    let mut buf = Vec::new();
    while let Some(first) = items.next().await {
        buf.clear();
        let mut next = Some(first);
        while let Some(item) = next {
            let framed = frame(item).map(|m| put_message(&mut buf, &m));
            if !matches!(framed, Some(Ok(()))) {
                return false;
            }
            next = items.next().now_or_never().flatten();
        }
        if wr.write_all(&buf).await.is_err() {
            return false;
        }
    }
    true
}

/// Writes the replies; then the refusal that ended the requests, if one did.
async fn write_replies<W>(
    mut wr: WriteHalf<W>,
    replies: impl Stream<Item = Result<StreamAppendResult<TypeConfig>, String>>,
    refused: Arc<Mutex<Option<AppendReply>>>,
) where
    W: AsyncRead + AsyncWrite,
{
    let as_frame = |reply| {
        encode(&reply).ok().map(|data| AppendReply {
            data,
            ..AppendReply::default()
        })
    };
    if !write_gathered(&mut wr, replies, as_frame).await {
        return;
    }
    let why = refused.lock().ok().and_then(|mut slot| slot.take());
    if let Some(why) = why {
        let mut buf = Vec::new();
        if put_message(&mut buf, &why).is_ok() {
            let _ = wr.write_all(&buf).await;
        }
    }
    let _ = wr.shutdown().await;
}

/// How a follower answered [`open`].
pub enum Opened<C> {
    /// The stream is open: requests go to the writer, replies come from the reader.
    Accepted(ReadHalf<C>, WriteHalf<C>),
    /// The hello is on its way and appends may follow it at once; the
    /// follower's answer to it is the first frame [`replies_from`] reads.
    Sent(ReadHalf<C>, WriteHalf<C>),
    /// The follower refused the stream (an incarnation mismatch).
    Refused(tonic::Status),
    /// Whatever answers at the address does not speak this protocol: a node
    /// of an older build, which has only the HTTP/2 stream.
    NotSpoken(String),
}

/// Connects to `addr` and asks for an append stream. With `await_answer`
/// it waits for the follower's answer to the hello, which tells a node of an
/// older build apart while the session can still go to HTTP/2; without it,
/// for a peer known to speak this, the appends go right behind the hello and
/// a session costs no round trip of its own (a catching-up follower is sent
/// many short sessions: one per probe of its log).
pub async fn open(
    addr: &str,
    expected_incarnation: u64,
    await_answer: bool,
) -> io::Result<Opened<impl AsyncRead + AsyncWrite + Send + 'static>> {
    let conn = TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    let conn = crate::timeline::outbound_stream(conn);
    let (mut rd, mut wr) = tokio::io::split(conn);
    let mut buf = PREFACE.to_vec();
    let hello = AppendHello {
        expected_incarnation,
    };
    put_message(&mut buf, &hello).map_err(|e| io::Error::other(e.to_string()))?;
    // From here on, anything but an answer means the peer does not speak
    // this: an HTTP/2 server resets the connection, an HTTP/1 one answers
    // with text. A node that does speak it never fails the handshake.
    if let Err(e) = wr.write_all(&buf).await {
        return Ok(Opened::NotSpoken(e.to_string()));
    }
    if !await_answer {
        return Ok(Opened::Sent(rd, wr));
    }
    Ok(match read_message::<AppendReply, _>(&mut rd).await {
        Ok(Some(answer)) => match reply_or_status(answer) {
            Ok(_) => Opened::Accepted(rd, wr),
            Err(status) => Opened::Refused(status),
        },
        Ok(None) => Opened::NotSpoken("the connection closed on the preface".into()),
        Err(e) => Opened::NotSpoken(e.to_string()),
    })
}

/// The leader's writer: the appends as frames (see `write_gathered`) until
/// the requests end; then it closes its half, so the follower answers what
/// is in flight and ends the stream.
pub async fn send_requests<W>(mut wr: WriteHalf<W>, requests: impl Stream<Item = RaftPayload>)
where
    W: AsyncRead + AsyncWrite,
{
    if write_gathered(&mut wr, requests, Some).await {
        let _ = wr.shutdown().await;
    }
}

/// The follower's replies as the HTTP/2 stream's messages: a refusal is its
/// status, a broken connection is UNAVAILABLE. After [`Opened::Sent`] the
/// first frame is the answer to the hello, which `spoken` is passed: when
/// it is not one, `spoken` is cleared, so that the next session waits for its
/// answer and can tell an older build from a connection that broke.
pub fn replies_from<R>(
    rd: ReadHalf<R>,
    spoken: Option<Arc<AtomicBool>>,
) -> impl Stream<Item = Result<RaftPayload, tonic::Status>> + Send + Unpin + 'static
where
    R: AsyncRead + Send + 'static,
{
    Box::pin(futures::stream::unfold(
        Some((BufReader::new(rd), spoken)),
        |state| async move {
            let (mut rd, spoken) = state?;
            if let Some(spoken) = spoken {
                let unanswered = match read_message::<AppendReply, _>(&mut rd).await {
                    Ok(Some(answer)) => match reply_or_status(answer) {
                        Ok(_) => None,
                        Err(refusal) => return Some((Err(refusal), None)),
                    },
                    Ok(None) => Some(FrameError::Closed.to_string()),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(why) = unanswered {
                    spoken.store(false, Ordering::Relaxed);
                    let status = tonic::Status::unavailable(format!(
                        "append stream: no answer to the hello: {why}"
                    ));
                    return Some((Err(status), None));
                }
            }
            match read_message::<AppendReply, _>(&mut rd).await {
                Ok(Some(r)) => {
                    let reply = reply_or_status(r);
                    let go_on = reply.is_ok();
                    Some((reply, go_on.then_some((rd, None))))
                }
                Ok(None) => None,
                Err(e) => Some((
                    Err(tonic::Status::unavailable(format!("append stream: {e}"))),
                    None,
                )),
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames_of(bytes: Vec<u8>) -> Vec<Result<Option<RaftPayload>, String>> {
        let mut r = bytes.as_slice();
        let mut out = Vec::new();
        loop {
            let m = read_message::<RaftPayload, _>(&mut r).await;
            let done = !matches!(m, Ok(Some(_)));
            out.push(m.map_err(|e| e.to_string()));
            if done {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn frames_read_back_as_written_and_end_cleanly_between_frames() {
        let mut buf = Vec::new();
        for data in [vec![], vec![1, 2, 3], vec![7; 70_000]] {
            put_message(&mut buf, &RaftPayload { data }).expect("encodes");
        }
        let read = frames_of(buf).await;
        let lens: Vec<_> = read
            .iter()
            .map(|m| {
                m.as_ref()
                    .ok()
                    .and_then(|m| m.as_ref().map(|p| p.data.len()))
            })
            .collect();
        assert_eq!(lens, [Some(0), Some(3), Some(70_000), None]);
        assert!(read[3].is_ok(), "{:?}", read[3]);
    }

    #[tokio::test]
    async fn a_cut_frame_an_oversized_one_and_garbage_are_errors() {
        let mut whole = Vec::new();
        put_message(&mut whole, &RaftPayload { data: vec![5; 10] }).expect("encodes");
        let cut = frames_of(whole[..whole.len() - 1].to_vec()).await;
        assert!(cut[0].is_err(), "{cut:?}");
        let cut_length = frames_of(vec![0, 0]).await;
        assert!(cut_length[0].is_err(), "{cut_length:?}");

        let huge = frames_of(u32::MAX.to_be_bytes().to_vec()).await;
        assert!(
            huge[0].as_ref().is_err_and(|e| e.contains("over the")),
            "{huge:?}"
        );
        // A field of wire type 7 does not exist.
        let garbage = frames_of(vec![0, 0, 0, 2, 0x0f, 0x01]).await;
        assert!(
            garbage[0]
                .as_ref()
                .is_err_and(|e| e.contains("undecodable")),
            "{garbage:?}"
        );
    }

    #[tokio::test]
    async fn a_hello_needs_the_preface() {
        let mut ok = PREFACE.to_vec();
        put_message(
            &mut ok,
            &AppendHello {
                expected_incarnation: 42,
            },
        )
        .expect("encodes");
        let hello = read_hello(&mut ok.as_slice()).await.expect("a hello");
        assert_eq!(hello.expected_incarnation, 42);

        let mut http2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        http2.extend_from_slice(&ok[PREFACE.len()..]);
        let refused = read_hello(&mut http2.as_slice()).await;
        assert!(matches!(refused, Err(FrameError::Preface)), "{refused:?}");

        let closed = read_hello(&mut &PREFACE[..]).await;
        assert!(matches!(closed, Err(FrameError::Closed)), "{closed:?}");
    }
}
