//! One connection's FastCGI conversation, pure: records in; answers (bytes), complete
//! requests and when to close out. The poll loop feeds it and does the I/O.
//!
//! One request at a time per connection (`FCGI_MPXS_CONNS` 0): a second BEGIN_REQUEST
//! while one is in progress gets FCGI_CANT_MPX_CONN.

use crate::transport::fastcgi::codec::{
    self as codec, CodecError, Limits, MANAGEMENT_ID, ProtocolStatus, ROLE_RESPONDER, Record,
    RecordType,
};
use crate::transport::request::Request;
use crate::transport::response::Response;

/// What `GET_VALUES` answers.
#[derive(Debug, Clone)]
pub(super) struct Values {
    /// `FCGI_MAX_CONNS`: the connection cap.
    pub max_conns: String,
    /// `FCGI_MAX_REQS`: requests handled at once (the workers).
    pub max_reqs: String,
}

/// What to do after a record.
#[derive(Debug)]
pub(super) enum Flow {
    /// Keep reading.
    Continue,
    /// Close once the answer written so far is sent.
    Close,
    /// A whole request: a worker answers it; nothing more is read meanwhile.
    Dispatch(Complete),
}

/// A request whose PARAMS and STDIN have ended.
#[derive(Debug)]
pub(super) struct Complete {
    pub id: u16,
    pub keep_conn: bool,
    pub request: Request,
    /// What it holds in memory (params and body), for the poll loop's budget.
    pub bytes: usize,
}

/// The request being received.
#[derive(Debug)]
struct Active {
    id: u16,
    keep_conn: bool,
    params: Vec<u8>,
    body: Vec<u8>,
}

/// A connection's request state.
#[derive(Debug, Default)]
pub(super) struct Session {
    active: Option<Active>,
}

impl Session {
    /// True from BEGIN_REQUEST until the request is dispatched or aborted.
    pub(super) fn in_progress(&self) -> bool {
        self.active.is_some()
    }

    /// Bytes of the request in progress held so far.
    pub(super) fn buffered(&self) -> usize {
        self.active
            .as_ref()
            .map_or(0, |active| active.params.len() + active.body.len())
    }

    /// Takes one record; answers go to `out`. An error means the stream cannot go on:
    /// [`Session::refuse`] answers the request in progress, then the connection closes.
    pub(super) fn on_record(
        &mut self,
        record: Record,
        limits: &Limits,
        values: &Values,
        out: &mut Vec<u8>,
    ) -> Result<Flow, CodecError> {
        let id = record.request_id;
        if id == MANAGEMENT_ID {
            return management(&record, limits, values, out);
        }
        match record.kind {
            RecordType::BeginRequest => self.begin(id, &record.content, out),
            RecordType::AbortRequest => Ok(self.abort(id, out)),
            RecordType::Params => self.params(id, &record.content, limits),
            RecordType::Stdin => self.stdin(id, record.content, limits),
            // DATA belongs to the FILTER role, which is refused at BEGIN_REQUEST.
            RecordType::Data => Ok(Flow::Continue),
            other => {
                codec::encode_unknown_type(out, other);
                Ok(Flow::Continue)
            }
        }
    }

    fn begin(&mut self, id: u16, content: &[u8], out: &mut Vec<u8>) -> Result<Flow, CodecError> {
        let begin = codec::decode_begin_request(content)?;
        let refusal = match &self.active {
            // A repeated BEGIN_REQUEST for the request in progress is ignored.
            Some(active) if active.id == id => return Ok(Flow::Continue),
            Some(_) => ProtocolStatus::CantMpxConn,
            None if begin.role != ROLE_RESPONDER => ProtocolStatus::UnknownRole,
            None => {
                self.active = Some(Active {
                    id,
                    keep_conn: begin.keep_conn,
                    params: Vec::new(),
                    body: Vec::new(),
                });
                return Ok(Flow::Continue);
            }
        };
        codec::encode_end_request(out, id, 0, refusal);
        let closes = refusal == ProtocolStatus::UnknownRole && !begin.keep_conn;
        Ok(if closes { Flow::Close } else { Flow::Continue })
    }

    fn abort(&mut self, id: u16, out: &mut Vec<u8>) -> Flow {
        let Some(active) = self.active.take_if(|active| active.id == id) else {
            return Flow::Continue;
        };
        codec::encode_end_request(out, id, 0, ProtocolStatus::RequestComplete);
        if active.keep_conn {
            Flow::Continue
        } else {
            Flow::Close
        }
    }

    fn params(&mut self, id: u16, content: &[u8], limits: &Limits) -> Result<Flow, CodecError> {
        let limit = limits.max_params_bytes;
        if let Some(active) = self.active.as_mut().filter(|active| active.id == id) {
            if active.params.len() + content.len() > limit {
                return Err(CodecError::ParamsTooLarge { limit });
            }
            active.params.extend_from_slice(content);
        }
        Ok(Flow::Continue)
    }

    fn stdin(&mut self, id: u16, content: Vec<u8>, limits: &Limits) -> Result<Flow, CodecError> {
        let Some(active) = self.active.as_mut().filter(|active| active.id == id) else {
            return Ok(Flow::Continue);
        };
        if !content.is_empty() {
            if active.body.len() + content.len() > limits.max_stdin_bytes {
                let limit = limits.max_stdin_bytes;
                return Err(CodecError::BodyTooLarge { limit });
            }
            if active.body.is_empty() {
                // Most bodies are one record: keep its buffer rather than copy it.
                active.body = content;
            } else {
                active.body.extend_from_slice(&content);
            }
            return Ok(Flow::Continue);
        }
        // The empty STDIN record ends the request.
        let params = codec::decode_params(&active.params, limits)?;
        let bytes = active.params.len() + active.body.len();
        let Some(active) = self.active.take() else {
            return Ok(Flow::Continue);
        };
        Ok(Flow::Dispatch(Complete {
            id: active.id,
            keep_conn: active.keep_conn,
            request: Request {
                params,
                body: active.body,
            },
            bytes,
        }))
    }

    /// After malformed or oversized input: the error page (413 for a limit, else 400)
    /// and END_REQUEST for the request in progress, if any; true when one was written.
    pub(super) fn refuse(&mut self, err: &CodecError, out: &mut Vec<u8>) -> bool {
        let Some(active) = self.active.take() else {
            return false;
        };
        let response = Response::status_page(if err.is_limit() { 413 } else { 400 });
        let mut page = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = response.write_cgi(&mut page);
        codec::encode_stream(out, RecordType::Stdout, active.id, &page);
        codec::encode_end_request(out, active.id, 0, ProtocolStatus::RequestComplete);
        true
    }
}

/// Records of request id 0: GET_VALUES is answered, any other type is unknown.
fn management(
    record: &Record,
    limits: &Limits,
    values: &Values,
    out: &mut Vec<u8>,
) -> Result<Flow, CodecError> {
    if record.kind != RecordType::GetValues {
        codec::encode_unknown_type(out, record.kind);
        return Ok(Flow::Continue);
    }
    let names = codec::decode_params(&record.content, limits)?;
    let known: [(&[u8], &[u8]); 3] = [
        (b"FCGI_MAX_CONNS", values.max_conns.as_bytes()),
        (b"FCGI_MAX_REQS", values.max_reqs.as_bytes()),
        (b"FCGI_MPXS_CONNS", b"0"),
    ];
    let answers: Vec<(&[u8], &[u8])> = known
        .into_iter()
        .filter(|(name, _)| names.iter().any(|(asked, _)| asked == name))
        .collect();
    codec::encode_get_values_result(out, &answers);
    Ok(Flow::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::fastcgi::codec::Decoder;

    fn values() -> Values {
        Values {
            max_conns: "1024".into(),
            max_reqs: "16".into(),
        }
    }

    fn record(kind: RecordType, id: u16, content: &[u8]) -> Record {
        Record {
            kind,
            request_id: id,
            content: content.to_vec(),
        }
    }

    fn begin(id: u16, role: u8, keep_conn: bool) -> Record {
        record(
            RecordType::BeginRequest,
            id,
            &[0, role, u8::from(keep_conn), 0, 0, 0, 0, 0],
        )
    }

    fn feed(session: &mut Session, records: Vec<Record>, out: &mut Vec<u8>) -> Vec<Flow> {
        records
            .into_iter()
            .map(|r| {
                session
                    .on_record(r, &Limits::default(), &values(), out)
                    .unwrap()
            })
            .collect()
    }

    fn decode(out: &[u8]) -> Vec<Record> {
        let mut decoder = Decoder::new();
        decoder.feed(out);
        std::iter::from_fn(|| decoder.next_record().unwrap()).collect()
    }

    #[test]
    fn a_request_is_dispatched_at_its_empty_stdin_with_params_and_body() {
        let mut params = Vec::new();
        codec::encode_pairs(&mut params, &[(b"QUERY_STRING", b"page=2")]);
        let mut session = Session::default();
        let mut out = Vec::new();
        let mut flows = feed(
            &mut session,
            vec![
                begin(3, 1, true),
                record(RecordType::Params, 3, &params),
                record(RecordType::Params, 3, b""),
                record(RecordType::Stdin, 3, b"body"),
            ],
            &mut out,
        );
        assert!(session.in_progress());
        assert_eq!(session.buffered(), params.len() + 4);
        flows.extend(feed(
            &mut session,
            vec![record(RecordType::Stdin, 3, b"")],
            &mut out,
        ));
        let Some(Flow::Dispatch(complete)) = flows.pop() else {
            panic!("not dispatched: {flows:?}");
        };
        assert_eq!((complete.id, complete.keep_conn), (3, true));
        assert_eq!(complete.request.query_string(), "page=2");
        assert_eq!(complete.request.body, b"body");
        assert!(!session.in_progress());
        assert!(out.is_empty(), "nothing is answered before the worker does");
    }

    #[test]
    fn a_second_request_id_gets_cant_mpx_conn_and_the_first_goes_on() {
        let mut session = Session::default();
        let mut out = Vec::new();
        feed(
            &mut session,
            vec![begin(1, 1, true), begin(2, 1, true)],
            &mut out,
        );
        let answers = decode(&out);
        assert_eq!(answers[0].kind, RecordType::EndRequest);
        assert_eq!((answers[0].request_id, answers[0].content[4]), (2, 1));
        assert!(session.in_progress());
    }

    #[test]
    fn an_unknown_role_without_keep_conn_is_refused_and_closes() {
        let mut session = Session::default();
        let mut out = Vec::new();
        let flows = feed(&mut session, vec![begin(1, 2, false)], &mut out);
        assert!(matches!(flows[..], [Flow::Close]));
        assert_eq!(decode(&out)[0].content[4], 3, "FCGI_UNKNOWN_ROLE");
    }

    #[test]
    fn abort_ends_the_request_and_closes_only_without_keep_conn() {
        for keep_conn in [true, false] {
            let mut session = Session::default();
            let mut out = Vec::new();
            let flows = feed(
                &mut session,
                vec![
                    begin(1, 1, keep_conn),
                    record(RecordType::AbortRequest, 1, b""),
                ],
                &mut out,
            );
            assert_eq!(matches!(flows[1], Flow::Close), !keep_conn);
            assert_eq!(decode(&out)[0].kind, RecordType::EndRequest);
            assert!(!session.in_progress());
        }
    }

    #[test]
    fn get_values_answers_the_cap_and_the_workers_and_other_management_is_unknown() {
        let mut asked = Vec::new();
        codec::encode_pairs(
            &mut asked,
            &[(b"FCGI_MAX_CONNS", b""), (b"FCGI_MAX_REQS", b"")],
        );
        let mut session = Session::default();
        let mut out = Vec::new();
        feed(
            &mut session,
            vec![
                record(RecordType::GetValues, 0, &asked),
                record(RecordType::Other(42), 0, b""),
            ],
            &mut out,
        );
        let answers = decode(&out);
        let pairs = codec::decode_params(&answers[0].content, &Limits::default()).unwrap();
        assert_eq!(
            pairs,
            [
                (b"FCGI_MAX_CONNS".to_vec(), b"1024".to_vec()),
                (b"FCGI_MAX_REQS".to_vec(), b"16".to_vec())
            ]
        );
        assert_eq!(answers[1].kind, RecordType::UnknownType);
    }

    #[test]
    fn params_over_the_limit_are_an_error_and_refuse_answers_413() {
        let limits = Limits {
            max_params_bytes: 4,
            ..Limits::default()
        };
        let mut session = Session::default();
        let mut out = Vec::new();
        session
            .on_record(begin(1, 1, true), &limits, &values(), &mut out)
            .unwrap();
        let err = session
            .on_record(
                record(RecordType::Params, 1, b"12345"),
                &limits,
                &values(),
                &mut out,
            )
            .unwrap_err();
        assert!(session.refuse(&err, &mut out));
        let answers = decode(&out);
        assert!(answers[0].content.starts_with(b"Status: 413 "));
        assert_eq!(answers.last().unwrap().kind, RecordType::EndRequest);
        assert!(!session.refuse(&err, &mut out), "nothing left to refuse");
    }
}
