//! [`MessageStore`] for [`MemoryStore`]: messages and cursors.

use super::*;

impl MessageStore for MemoryStore {
    fn write_batch(
        &self,
        messages: &[NewMessage],
        cursors: &[CursorUpdate],
    ) -> StoreResult<(Vec<Appended>, Vec<CursorOutcome>)> {
        #[cfg(feature = "testing")]
        let _open = self
            .commit_gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut g = self.lock()?;
        let mut appended = Vec::with_capacity(messages.len());
        for m in messages {
            let stored = m.client_id.as_ref().and_then(|cid| {
                let c = g.convs.get(&m.conv)?;
                let &i = c.by_client_id.get(&(m.from.clone(), cid.clone()))?;
                Some(&c.messages[i])
            });
            if let Some(orig) = stored {
                appended.push(Appended {
                    seq: orig.seq,
                    ts: orig.ts,
                    duplicate: true,
                    refused: None,
                });
                continue;
            }
            if let Some(why) = m.guard.as_ref().and_then(|guard| g.refusal(m, guard)) {
                appended.push(Appended::refused(why));
                continue;
            }
            let conv = g.convs.entry(m.conv.clone()).or_default();
            if let ConvId::Direct(a, b) = &m.conv {
                conv.members.insert(a.clone());
                conv.members.insert(b.clone());
            }
            let seq = conv.messages.len() as u64 + 1;
            let ts = m.now.max(conv.messages.last().map_or(0, |l| l.ts));
            conv.activity = ts;
            if let Some(cid) = &m.client_id {
                conv.by_client_id
                    .insert((m.from.clone(), cid.clone()), conv.messages.len());
            }
            conv.messages.push(StoredMessage {
                conv: m.conv.clone(),
                seq,
                from: m.from.clone(),
                body: m.body.clone(),
                ts,
                client_id: m.client_id.clone(),
                attachment: m.attachment.clone(),
            });
            // The sender has seen what they sent: follow it when just below.
            let r = conv.read.entry(m.from.clone()).or_insert(0);
            if *r + 1 == seq {
                *r = seq;
            }
            let base = conv.joined.get(&m.from).copied().unwrap_or(0);
            let d = g
                .delivered
                .entry((m.from.clone(), m.device.clone(), m.conv.clone()))
                .or_insert(base);
            if *d + 1 == seq {
                *d = seq;
            }
            appended.push(Appended {
                seq,
                ts,
                duplicate: false,
                refused: None,
            });
        }
        let outcomes = cursors.iter().map(|u| g.apply_cursor(u)).collect();
        Ok((appended, outcomes))
    }

    fn find_client_id(
        &self,
        conv: &ConvId,
        from: &UserId,
        client_id: &str,
    ) -> StoreResult<Option<Appended>> {
        let g = self.lock()?;
        Ok(g.convs.get(conv).and_then(|c| {
            c.by_client_id
                .get(&(from.clone(), client_id.to_owned()))
                .map(|&i| Appended {
                    seq: c.messages[i].seq,
                    ts: c.messages[i].ts,
                    duplicate: true,
                    refused: None,
                })
        }))
    }

    fn messages_after(
        &self,
        conv: &ConvId,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        let g = self.lock()?;
        Ok(g.convs.get(conv).map_or_else(Vec::new, |c| {
            let start = (after as usize).min(c.messages.len());
            c.messages[start..].iter().take(limit).cloned().collect()
        }))
    }

    fn messages_before(
        &self,
        conv: &ConvId,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        let g = self.lock()?;
        Ok(g.convs.get(conv).map_or_else(Vec::new, |c| {
            let end = before.map_or(c.messages.len(), |b| {
                (b.saturating_sub(1) as usize).min(c.messages.len())
            });
            let start = end.saturating_sub(limit);
            c.messages[start..end].to_vec()
        }))
    }

    fn is_member(&self, conv: &ConvId, user: &UserId) -> StoreResult<bool> {
        let g = self.lock()?;
        Ok(g.convs.get(conv).is_some_and(|c| c.members.contains(user)))
    }

    fn conversations(&self, user: &UserId, device: &str) -> StoreResult<Vec<ConvSummary>> {
        let g = self.lock()?;
        let mut out: Vec<ConvSummary> = g
            .convs
            .iter()
            .filter(|(_, c)| c.members.contains(user))
            .map(|(id, c)| {
                let read_seq = c.read.get(user).copied().unwrap_or(0);
                let unread = c
                    .messages
                    .iter()
                    .skip(read_seq as usize)
                    .filter(|m| &m.from != user)
                    .count() as u64;
                ConvSummary {
                    conv: id.clone(),
                    last_seq: c.messages.len() as u64,
                    activity: c.activity,
                    read_seq,
                    delivered_seq: g
                        .delivered
                        .get(&(user.clone(), device.to_owned(), id.clone()))
                        .copied()
                        .unwrap_or(0)
                        .max(c.joined.get(user).copied().unwrap_or(0)),
                    unread,
                    peer_read_seq: id
                        .peer_of(user)
                        .map(|p| c.read.get(p).copied().unwrap_or(0)),
                    last: c.messages.last().cloned(),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.activity
                .cmp(&a.activity)
                .then_with(|| a.conv.cmp(&b.conv))
        });
        Ok(out)
    }
}

impl Inner {
    /// Why `guard` refuses `m`, if it does.
    fn refusal(&self, m: &NewMessage, guard: &SendGuard) -> Option<Refusal> {
        let token_ok = self
            .devices
            .get(&m.from)
            .and_then(|ds| ds.get(&m.device))
            .is_some_and(|d| d.token_hash.is_some());
        let suspended = self.users.get(&m.from).is_none_or(|u| u.suspended);
        if !token_ok || suspended {
            return Some(Refusal::Credentials);
        }
        let allowed = match &m.conv {
            ConvId::Direct(a, b) => {
                let blocked = self.blocks.contains(&(a.clone(), b.clone()))
                    || self.blocks.contains(&(b.clone(), a.clone()));
                let mutual = self.relations.get(&pair(a, b)) == Some(&Relation::Mutual);
                !blocked && (mutual || !guard.require_contact)
            }
            ConvId::Room(_) => self
                .convs
                .get(&m.conv)
                .is_some_and(|c| c.members.contains(&m.from)),
        };
        (!allowed).then_some(Refusal::Conversation)
    }
}
