//! RDMA verbs backend (being written).
use crate::*;
pub struct VerbsTransport;
impl VerbsTransport {
    pub fn connect(_c: &ClusterConfig, _r: NodeId) -> Result<Arc<dyn Transport>> {
        Err(TransportError::NoDevice("the verbs backend is not written yet".into()))
    }
}
