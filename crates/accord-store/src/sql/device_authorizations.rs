//! Device authorizations (RFC 8628): written when a device asks for a code, decided once by the
//! person on the verification page, redeemed once by the device's poll. Both transitions are
//! conditional updates, so two answers (or two polls) cannot both win.

use accord_core::ids::AppId;
use time::OffsetDateTime;

use super::codec::{corrupt, id, micros, to_json, Cols};
use super::{db_err, write_err, SqlStore};
use crate::{DeviceAuthorizationRecord, DeviceRedemption, DeviceRefusal, DeviceStatus, StoreError, StoreResult};

const COLUMNS: &str = "device_code_hash, user_code_hash, tenant_segment, client_app_id, scope, created_at, \
     expires_at, status, tenant_id, user_id, auth_time, family_id, refusal";

fn device_from(c: &Cols<'_>) -> StoreResult<DeviceAuthorizationRecord> {
    let status = match c.text("status")?.as_str() {
        "pending" => DeviceStatus::Pending,
        "approved" => DeviceStatus::Approved {
            tenant_id: c.uuid("tenant_id")?,
            user_id: c.uuid("user_id")?,
            auth_time: c.time("auth_time")?,
        },
        "refused" => DeviceStatus::Refused(c.json("refusal")?),
        "redeemed" => DeviceStatus::Redeemed,
        other => return Err(corrupt("status", format!("unknown device authorization status {other:?}"))),
    };
    Ok(DeviceAuthorizationRecord {
        device_code_hash: c.text("device_code_hash")?,
        user_code_hash: c.text("user_code_hash")?,
        tenant_segment: c.text("tenant_segment")?,
        client_app_id: c.uuid("client_app_id")?,
        scope: c.text("scope")?,
        created_at: c.time("created_at")?,
        expires_at: c.time("expires_at")?,
        status,
        family_id: c.uuid("family_id")?,
    })
}

fn status_name(s: &DeviceStatus) -> &'static str {
    match s {
        DeviceStatus::Pending => "pending",
        DeviceStatus::Approved { .. } => "approved",
        DeviceStatus::Refused(_) => "refused",
        DeviceStatus::Redeemed => "redeemed",
    }
}

impl SqlStore {
    pub(super) async fn insert_device_authorization(&self, d: &DeviceAuthorizationRecord) -> StoreResult<()> {
        if d.status != DeviceStatus::Pending {
            return Err(StoreError::Conflict("a device authorization starts pending".into()));
        }
        let sql = format!(
            "INSERT INTO device_authorizations ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', NULL, NULL, NULL, $8, NULL)"
        );
        let q = sqlx::query(&sql)
            .bind(d.device_code_hash.as_str())
            .bind(d.user_code_hash.as_str())
            .bind(d.tenant_segment.as_str())
            .bind(id(d.client_app_id))
            .bind(d.scope.as_str())
            .bind(micros(d.created_at))
            .bind(micros(d.expires_at))
            .bind(id(d.family_id));
        self.execute(self.pool(), q)
            .await
            .map_err(|e| write_err(e, |_| "this device or user code is already in use".to_string()))?;
        Ok(())
    }

    pub(super) async fn get_device_authorization_by_user_code(
        &self,
        user_code_hash: &str,
    ) -> StoreResult<Option<DeviceAuthorizationRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM device_authorizations WHERE user_code_hash = $1");
        self.read_one(sqlx::query(&sql).bind(user_code_hash), device_from).await
    }

    pub(super) async fn decide_device(
        &self,
        device_code_hash: &str,
        decision: &DeviceStatus,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let (tenant_id, user_id, auth_time, refusal) = match decision {
            DeviceStatus::Approved { tenant_id, user_id, auth_time } => {
                (Some(id(*tenant_id)), Some(id(*user_id)), Some(micros(*auth_time)), None)
            }
            DeviceStatus::Refused(r) => (None, None, None, Some(to_json::<DeviceRefusal>(r)?)),
            DeviceStatus::Pending | DeviceStatus::Redeemed => {
                return Err(StoreError::Conflict("a device authorization is decided by approval or refusal".into()))
            }
        };
        let q = sqlx::query(
            "UPDATE device_authorizations SET status = $2, tenant_id = $3, user_id = $4, auth_time = $5, refusal = $6 \
             WHERE device_code_hash = $1 AND status = 'pending' AND expires_at > $7",
        )
        .bind(device_code_hash)
        .bind(status_name(decision))
        .bind(tenant_id)
        .bind(user_id)
        .bind(auth_time)
        .bind(refusal)
        .bind(micros(now));
        Ok(self.execute(self.pool(), q).await.map_err(db_err)?.rows_affected() == 1)
    }

    pub(super) async fn redeem_device(
        &self,
        device_code_hash: &str,
        client_app_id: AppId,
        now: OffsetDateTime,
    ) -> StoreResult<DeviceRedemption> {
        let sql = format!(
            "UPDATE device_authorizations SET status = 'redeemed' \
             WHERE device_code_hash = $1 AND status = 'approved' AND expires_at > $2 AND client_app_id = $3 \
             RETURNING {COLUMNS}"
        );
        let q = sqlx::query(&sql).bind(device_code_hash).bind(micros(now)).bind(id(client_app_id));
        // RETURNING shows the row as updated ("redeemed"); the caller needs what was approved.
        let as_approved = |c: &Cols<'_>| {
            let mut record = device_from(c)?;
            record.status = DeviceStatus::Approved {
                tenant_id: c.uuid("tenant_id")?,
                user_id: c.uuid("user_id")?,
                auth_time: c.time("auth_time")?,
            };
            Ok(record)
        };
        if let Some(approved) = self.read_one(q, as_approved).await? {
            return Ok(DeviceRedemption::Approved(approved));
        }
        let sql = format!("SELECT {COLUMNS} FROM device_authorizations WHERE device_code_hash = $1");
        let found = self.read_one(sqlx::query(&sql).bind(device_code_hash), device_from).await?;
        let Some(found) = found.filter(|d| d.client_app_id == client_app_id) else {
            return Ok(DeviceRedemption::NotFound);
        };
        Ok(match found.status {
            DeviceStatus::Redeemed => DeviceRedemption::AlreadyRedeemed(found),
            DeviceStatus::Refused(r) => DeviceRedemption::Refused(r),
            _ if found.expires_at <= now => DeviceRedemption::Expired,
            DeviceStatus::Pending => DeviceRedemption::Pending,
            // Approved and unexpired, yet not redeemed above: another poll won in between.
            DeviceStatus::Approved { .. } => DeviceRedemption::Pending,
        })
    }
}
