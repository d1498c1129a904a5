//! Webhook deliveries as received, in `webhook_deliveries`, through the one writer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::errors::db_err;
use super::{SqliteStore, sql};
use crate::storage::common::{headers_from_json, headers_to_json, ts_to_text};
use crate::storage::{
    NewDelivery, Result, SavedDelivery, StorageError, StoredDelivery, WebhookStore,
};

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn save_delivery(&self, d: &NewDelivery) -> Result<SavedDelivery> {
        let inserted: Option<Option<String>> = sqlx::query_scalar(sql::WEBHOOK_INSERT_DELIVERY)
            .bind(&d.plugin_id)
            .bind(&d.delivery_id)
            .bind(&d.event)
            .bind(headers_to_json(&d.headers).to_string())
            .bind(d.body.as_ref())
            .bind(ts_to_text(&d.received_at))
            .fetch_optional(&self.writer)
            .await
            .map_err(db_err)?;
        if let Some(job_id) = inserted {
            return Ok(SavedDelivery {
                inserted: true,
                job_id,
            });
        }
        // Read through the writer: the row may be younger than the readers' snapshot.
        let job_id: Option<String> = sqlx::query_scalar(sql::WEBHOOK_DELIVERY_JOB)
            .bind(&d.plugin_id)
            .bind(&d.delivery_id)
            .fetch_one(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(SavedDelivery {
            inserted: false,
            job_id,
        })
    }

    async fn set_delivery_job(
        &self,
        plugin_id: &str,
        delivery_id: &str,
        job_id: &str,
    ) -> Result<()> {
        sqlx::query(sql::WEBHOOK_SET_DELIVERY_JOB)
            .bind(plugin_id)
            .bind(delivery_id)
            .bind(job_id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delivery(&self, plugin_id: &str, delivery_id: &str) -> Result<Option<StoredDelivery>> {
        type Row = (
            Option<String>,
            String,
            Vec<u8>,
            DateTime<Utc>,
            Option<String>,
        );
        let row: Option<Row> = sqlx::query_as(sql::WEBHOOK_DELIVERY)
            .bind(plugin_id)
            .bind(delivery_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        let Some((event, headers, body, received_at, job_id)) = row else {
            return Ok(None);
        };
        let headers = serde_json::from_str(&headers).map_err(|e| {
            StorageError::Invalid(format!("webhook_deliveries.headers is not JSON: {e}"))
        })?;
        Ok(Some(StoredDelivery {
            delivery: NewDelivery {
                plugin_id: plugin_id.to_owned(),
                delivery_id: delivery_id.to_owned(),
                event,
                headers: headers_from_json(headers)?,
                body: body.into(),
                received_at,
            },
            job_id,
        }))
    }
}
