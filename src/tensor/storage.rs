//! Where a tensor's numbers live.
//!
//! Every op reads and writes host memory today. The [`Device`] tag is carried by every tensor so
//! that a GPU backend can be added as another [`Storage`] variant without touching the
//! algorithms: ops ask the storage for a host slice and will dispatch on the device instead.

/// The device that holds a tensor's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// Host memory, computed by the CPU kernels of this crate.
    #[default]
    Cpu,
}

/// The buffer behind a tensor: dense, row-major, contiguous.
#[derive(Debug)]
pub enum Storage<T> {
    /// A host buffer.
    Cpu(Vec<T>),
}

impl<T> Storage<T> {
    /// The device this buffer lives on.
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
        }
    }

    /// The data as a host slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            Storage::Cpu(v) => v,
        }
    }
}
