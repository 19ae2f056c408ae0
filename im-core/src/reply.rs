//! The promise of exactly one reply per request.

use tokio::sync::OwnedSemaphorePermit;

use crate::error::{ErrorCode, ProtoError};
use crate::protocol::{Encoded, Reply, RequestId, ServerFrame};
use crate::transport::Outbox;

/// Where the reply to one request goes. Whoever finishes the request
/// (session, user actor, conversation actor) sends it; if it is dropped
/// unanswered (an actor died), the client still gets `unavailable`. Holding
/// it keeps one of the connection's in-flight permits.
#[derive(Debug)]
pub(crate) struct ReplyTo {
    outbox: Outbox,
    id: Option<RequestId>,
    permit: Option<OwnedSemaphorePermit>,
    done: bool,
}

impl ReplyTo {
    pub fn new(
        outbox: Outbox,
        id: Option<RequestId>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> ReplyTo {
        ReplyTo {
            outbox,
            id,
            permit,
            done: false,
        }
    }

    /// Sends the reply.
    pub fn send(mut self, r: Result<Reply, ProtoError>) {
        self.push(r);
    }

    /// Sends `ok` with `reply`.
    pub fn ok(self, reply: Reply) {
        self.send(Ok(reply))
    }

    /// Sends an error.
    pub fn err(self, e: ProtoError) {
        self.send(Err(e))
    }

    /// Sends an already encoded reply (e.g. `pong`).
    pub fn frame(mut self, f: impl FnOnce(Option<RequestId>) -> ServerFrame) {
        self.done = true;
        self.outbox.push(f(self.id.take()).encode());
        self.permit.take();
    }

    fn push(&mut self, r: Result<Reply, ProtoError>) {
        self.done = true;
        let id = self.id.take();
        let frame: Encoded = match r {
            Ok(reply) => ServerFrame::ok(id, reply),
            Err(e) => {
                crate::telemetry::error(e.code);
                ServerFrame::error(id, e)
            }
        }
        .encode();
        self.outbox.push(frame);
        self.permit.take();
    }
}

impl Drop for ReplyTo {
    fn drop(&mut self) {
        if !self.done {
            self.push(Err(ProtoError::new(
                ErrorCode::Unavailable,
                "request could not be completed, try again",
            )));
        }
    }
}
