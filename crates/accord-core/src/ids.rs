//! Typed identifiers for the directory's objects.
//!
//! Every object id in Entra is a GUID, and several of them travel together: a user is found by
//! its tenant and its own id, an app has both an object id and an application (client) id, a
//! grant names two service principals. As bare `Uuid`s they are interchangeable, so swapping two
//! arguments compiles and fails at run time — or worse, succeeds against the wrong object.
//! Each kind here is its own type: the compiler keeps them apart. They serialise exactly as the
//! GUID they wrap, so stored data, scenario files and wire formats do not change.
//!
//! ```
//! use accord_core::ids::{TenantId, UserId};
//! fn find_user(_tenant: TenantId, _user: UserId) {}
//! let (tenant, user) = (TenantId::random(), UserId::random());
//! find_user(tenant, user);
//! ```
//!
//! ```compile_fail
//! use accord_core::ids::{TenantId, UserId};
//! fn find_user(_tenant: TenantId, _user: UserId) {}
//! let (tenant, user) = (TenantId::random(), UserId::random());
//! find_user(user, tenant); // swapped: does not compile
//! ```
//!
//! Ids that may name objects of several kinds (an app role assignment's principal, a reviewer)
//! stay `Uuid`; convert with `Uuid::from(id)` or `.into()` where a typed id flows into one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// The all-zero id: a placeholder for objects that are never stored (a draft being
            /// validated, the stand-in client of Accord's own pages). No stored object has it.
            pub const NIL: Self = Self(Uuid::nil());

            /// Wraps a GUID known to name an object of this kind.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// A fresh random (version 4) id, as Entra assigns them.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            pub const fn as_uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl PartialEq<Uuid> for $name {
            fn eq(&self, other: &Uuid) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for Uuid {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// A tenant (directory) id, the `tid` claim.
    TenantId
);
typed_id!(
    /// A user's object id, the `oid` claim of a user's token.
    UserId
);
typed_id!(
    /// A group's object id.
    GroupId
);
typed_id!(
    /// An app registration's object id (the `application` object's `id`), not its client id.
    AppObjectId
);
typed_id!(
    /// An application (client) id: `appId`, `client_id`, the `azp`/`appid` claims.
    AppId
);
typed_id!(
    /// A service principal's (enterprise app's) object id in one tenant.
    ServicePrincipalId
);

impl ServicePrincipalId {
    /// Stands in for a client's own service principal before consent creates it: a client may
    /// ask for its own scopes in a tenant where it has no enterprise app yet, and the grant that
    /// consent writes then points at the service principal made in the same change.
    pub const NOT_YET_CREATED: Self = Self(Uuid::nil());

    pub fn is_not_yet_created(self) -> bool {
        self.0.is_nil()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_bare_guid() {
        let id = TenantId::from_uuid(Uuid::from_u128(0x1234));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"00000000-0000-0000-0000-000000001234\"");
        assert_eq!(serde_json::from_str::<TenantId>(&json).unwrap(), id);
        assert_eq!(id.to_string(), "00000000-0000-0000-0000-000000001234");
        assert_eq!(format!("{id:?}"), "TenantId(00000000-0000-0000-0000-000000001234)");
    }

    #[test]
    fn parses_like_a_guid_and_refuses_what_is_not_one() {
        let id: AppId = "00000000-0000-0000-0000-00000000abcd".parse().unwrap();
        assert_eq!(id.as_uuid(), Uuid::from_u128(0xabcd));
        assert!("not-a-guid".parse::<AppId>().is_err());
    }
}
