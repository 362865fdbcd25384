//! User and group names to ids and back, looked up once per run.

use std::cell::RefCell;
use std::collections::HashMap;

use nix::unistd::{Gid, Group, Uid, User};

#[derive(Default)]
pub struct Accounts {
    uids: RefCell<HashMap<String, Option<u32>>>,
    gids: RefCell<HashMap<String, Option<u32>>>,
    user_names: RefCell<HashMap<u32, String>>,
    group_names: RefCell<HashMap<u32, String>>,
}

impl Accounts {
    /// A user name or numeric uid to a uid.
    pub fn uid(&self, name: &str) -> Option<u32> {
        if let Ok(n) = name.parse() {
            return Some(n);
        }
        // Only hits are cached: a user created later in the run must be found.
        if let Some(hit) = self.uids.borrow().get(name) {
            return *hit;
        }
        let found = User::from_name(name).ok().flatten().map(|u| u.uid.as_raw());
        if found.is_some() {
            self.uids.borrow_mut().insert(name.to_string(), found);
        }
        found
    }

    pub fn gid(&self, name: &str) -> Option<u32> {
        if let Ok(n) = name.parse() {
            return Some(n);
        }
        if let Some(hit) = self.gids.borrow().get(name) {
            return *hit;
        }
        let found = Group::from_name(name).ok().flatten().map(|g| g.gid.as_raw());
        if found.is_some() {
            self.gids.borrow_mut().insert(name.to_string(), found);
        }
        found
    }

    /// A uid as a name when it has one.
    pub fn user_name(&self, uid: u32) -> String {
        self.user_names
            .borrow_mut()
            .entry(uid)
            .or_insert_with(|| {
                User::from_uid(Uid::from_raw(uid)).ok().flatten().map(|u| u.name).unwrap_or(uid.to_string())
            })
            .clone()
    }

    pub fn group_name(&self, gid: u32) -> String {
        self.group_names
            .borrow_mut()
            .entry(gid)
            .or_insert_with(|| {
                Group::from_gid(Gid::from_raw(gid)).ok().flatten().map(|g| g.name).unwrap_or(gid.to_string())
            })
            .clone()
    }
}
