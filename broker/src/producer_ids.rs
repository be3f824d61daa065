//! Hands out producer ids for InitProducerId from blocks the controller allocates, so most calls touch no
//! quorum and ids stay unique cluster-wide.

use kraftwerk_controller::{ControllerError, ProducerIdBlock};

use crate::quorum::cluster::ClusterHandle;
use tokio::sync::Mutex;

pub struct ProducerIdManager {
    node_id: i32,
    /// `[next, end)` of the current block.
    block: Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    pub fn new(node_id: i32) -> Self {
        ProducerIdManager {
            node_id,
            block: Mutex::new((0, 0)),
        }
    }

    pub async fn next(&self, controller: &ClusterHandle) -> Result<i64, ControllerError> {
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let ProducerIdBlock { first, len } =
                controller.allocate_producer_ids(self.node_id).await?;
            *block = (first, first + i64::from(len));
            tracing::debug!(first, len, "new producer id block");
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}
