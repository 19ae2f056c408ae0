//! [`AccountStore`] for [`MemoryStore`]: accounts: users, devices, tokens and the server secret.

use super::*;

impl AccountStore for MemoryStore {
    fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let mut g = self.lock()?;
        if g.users.contains_key(&user.name) {
            return Err(StoreError::Conflict);
        }
        g.users.insert(user.name.clone(), user.clone());
        Ok(())
    }

    fn user(&self, name: &UserId) -> StoreResult<Option<UserRecord>> {
        Ok(self.lock()?.users.get(name).cloned())
    }

    fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        Ok(self.lock()?.users.values().cloned().collect())
    }

    fn set_password_hash(&self, name: &UserId, hash: &str) -> StoreResult<()> {
        let mut g = self.lock()?;
        let u = g.users.get_mut(name).ok_or(StoreError::NotFound)?;
        u.password_hash = hash.to_owned();
        Ok(())
    }

    fn set_suspended(&self, name: &UserId, suspended: bool) -> StoreResult<()> {
        let mut g = self.lock()?;
        let u = g.users.get_mut(name).ok_or(StoreError::NotFound)?;
        u.suspended = suspended;
        Ok(())
    }

    fn set_last_seen(&self, name: &UserId, at: Millis) -> StoreResult<()> {
        let mut g = self.lock()?;
        if let Some(u) = g.users.get_mut(name) {
            u.last_seen = Some(at);
        }
        Ok(())
    }

    fn suspended_users(&self) -> StoreResult<Vec<UserId>> {
        let g = self.lock()?;
        Ok(g.users
            .values()
            .filter(|u| u.suspended)
            .map(|u| u.name.clone())
            .collect())
    }

    fn grant_token(&self, g: &TokenGrant) -> StoreResult<Granted> {
        let mut guard = self.lock()?;
        let Some(u) = guard.users.get(&g.user) else {
            return Err(StoreError::NotFound);
        };
        if u.password_hash != g.password_hash {
            return Ok(Granted::PasswordChanged);
        }
        if u.suspended {
            return Ok(Granted::Suspended);
        }
        let devices = guard.devices.entry(g.user.clone()).or_default();
        let others = devices
            .values()
            .filter(|d| d.token_hash.is_some() && d.device != g.device)
            .count();
        if others >= g.max_devices {
            return Ok(Granted::TooManyDevices);
        }
        devices.insert(g.device.clone(), new_token(&g.device, &g.token_hash, g.now));
        Ok(Granted::Issued)
    }

    fn issue_token(
        &self,
        user: &UserId,
        device: &str,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<()> {
        let mut g = self.lock()?;
        g.devices
            .entry(user.clone())
            .or_default()
            .insert(device.to_owned(), new_token(device, token_hash, now));
        Ok(())
    }

    fn device_by_token(
        &self,
        user: &UserId,
        token_hash: &str,
    ) -> StoreResult<Option<DeviceRecord>> {
        let g = self.lock()?;
        Ok(g.devices.get(user).and_then(|ds| {
            ds.values()
                .find(|d| d.token_hash.as_deref() == Some(token_hash))
                .cloned()
        }))
    }

    fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<(UserId, DeviceRecord)>> {
        let g = self.lock()?;
        Ok(g.devices.iter().find_map(|(u, ds)| {
            ds.values()
                .find(|d| d.token_hash.as_deref() == Some(token_hash))
                .map(|d| (u.clone(), d.clone()))
        }))
    }

    fn touch_device(&self, user: &UserId, device: &str, now: Millis) -> StoreResult<()> {
        let mut g = self.lock()?;
        if let Some(d) = g.devices.get_mut(user).and_then(|ds| ds.get_mut(device)) {
            d.last_login = now;
        }
        Ok(())
    }

    fn touch_devices(&self, touches: &[(UserId, String, Millis)]) -> StoreResult<()> {
        let mut g = self.lock()?;
        for (user, device, at) in touches {
            if let Some(d) = g.devices.get_mut(user).and_then(|ds| ds.get_mut(device)) {
                d.last_login = d.last_login.max(*at);
            }
        }
        Ok(())
    }

    fn devices(&self, user: &UserId) -> StoreResult<Vec<DeviceRecord>> {
        let g = self.lock()?;
        Ok(g.devices
            .get(user)
            .map(|ds| ds.values().cloned().collect())
            .unwrap_or_default())
    }

    fn revoke_device(&self, user: &UserId, device: &str) -> StoreResult<bool> {
        let mut g = self.lock()?;
        match g.devices.get_mut(user).and_then(|ds| ds.get_mut(device)) {
            Some(d) => {
                d.token_hash = None;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn revoke_all_devices(&self, user: &UserId, keep: Option<&str>) -> StoreResult<()> {
        let mut g = self.lock()?;
        if let Some(ds) = g.devices.get_mut(user) {
            for d in ds.values_mut().filter(|d| Some(d.device.as_str()) != keep) {
                d.token_hash = None;
            }
        }
        Ok(())
    }

    fn server_secret(&self) -> StoreResult<Vec<u8>> {
        let mut g = self.lock()?;
        Ok(g.secret
            .get_or_insert_with(|| {
                use rand::RngCore;
                let mut b = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut b);
                b
            })
            .clone())
    }
}

/// A device holding a new token, logged in at `now`.
fn new_token(device: &str, token_hash: &str, now: Millis) -> DeviceRecord {
    DeviceRecord {
        device: device.to_owned(),
        token_hash: Some(token_hash.to_owned()),
        token_issued_at: now,
        last_login: now,
    }
}
