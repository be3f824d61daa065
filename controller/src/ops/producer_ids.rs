//! Producer id blocks: brokers take ids for InitProducerId in blocks, so the controller sees one proposal per
//! thousand producers and ids stay unique across brokers and restarts.

use crate::api::ProducerIdBlock;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

use super::OpOutput;

/// Kafka's block size (`ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const BLOCK_SIZE: i32 = 1000;

pub(crate) fn allocate(
    image: &MetadataImage,
    broker_id: i32,
) -> OpOutput<Result<ProducerIdBlock, ControllerError>> {
    let Some(broker) = image.broker(broker_id) else {
        return OpOutput {
            records: Vec::new(),
            response: Err(ControllerError::BrokerIdNotRegistered(format!(
                "broker {broker_id} is not registered"
            ))),
        };
    };
    let first = image.next_producer_id();
    let Some(next) = first.checked_add(i64::from(BLOCK_SIZE)) else {
        return OpOutput {
            records: Vec::new(),
            response: Err(ControllerError::Internal("producer ids exhausted".into())),
        };
    };
    OpOutput {
        records: vec![MetadataRecord::ProducerIds {
            broker_id,
            broker_epoch: broker.epoch,
            next_producer_id: next,
        }],
        response: Ok(ProducerIdBlock {
            first,
            len: BLOCK_SIZE,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::BrokerRecord;

    #[test]
    fn blocks_do_not_overlap_and_need_a_registered_broker() {
        let image = MetadataImage::empty("c");
        assert!(allocate(&image, 1).response.is_err());
        let image = image.apply(
            0,
            &[MetadataRecord::RegisterBroker(BrokerRecord {
                broker_id: 1,
                ..BrokerRecord::default()
            })],
        );
        let a = allocate(&image, 1);
        let image = image.apply(1, &a.records);
        let b = allocate(&image, 1);
        let (a, b) = (a.response.unwrap(), b.response.unwrap());
        assert_eq!(a.first, 0);
        assert_eq!(b.first, a.first + i64::from(a.len));
    }
}
