//! The [`Collective`] of an MPI job (cargo feature `mpi`, through the `mpi` crate, rsmpi):
//! `MPI_COMM_WORLD`, the ranks on this node (`MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)`),
//! `MPI_Allgatherv`, `MPI_Bcast`, `MPI_Barrier` and `MPI_Abort`. MPI is initialised with
//! `MPI_THREAD_SERIALIZED` and every call is made under one lock, so any thread may call.

use super::Collective;
use mpi::collective::{CommunicatorCollectives, Root};
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::Threading;
use std::sync::Mutex;

/// The world of an MPI job, as [`super::install`] takes it.
pub struct MpiWorld {
    comm: Mutex<SimpleCommunicator>,
    rank: usize,
    size: usize,
    local_size: usize,
}

// SAFETY: MPI is initialised with MPI_THREAD_SERIALIZED (checked in `init`) and every call
// through the communicator handle is made with `comm` locked, so calls never overlap.
unsafe impl Send for MpiWorld {}
// SAFETY: as for `Send`: the handle is only used under the lock.
unsafe impl Sync for MpiWorld {}

/// Initialises MPI (serialized threading) and returns the universe (which finalises MPI when
/// dropped: keep it alive for the whole run) and the world. `None` when MPI was initialised
/// already; an error when the library cannot give serialized threading.
pub fn init() -> Result<Option<(Universe, MpiWorld)>, String> {
    let Some((universe, provided)) = mpi::initialize_with_threading(Threading::Serialized) else {
        return Ok(None);
    };
    if provided < Threading::Serialized {
        return Err(format!(
            "the MPI library gives threading level {provided:?}, and metalearn needs \
             MPI_THREAD_SERIALIZED"
        ));
    }
    let world = universe.world();
    let local_size = world.split_shared(world.rank()).size() as usize;
    let w = MpiWorld {
        rank: world.rank() as usize,
        size: world.size() as usize,
        local_size,
        comm: Mutex::new(world),
    };
    Ok(Some((universe, w)))
}

impl MpiWorld {
    fn comm(&self) -> std::sync::MutexGuard<'_, SimpleCommunicator> {
        // A poisoned lock only means another thread panicked; the handle itself is intact.
        self.comm.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every rank's buffer, their lengths exchanged first.
    fn all_gather<T>(&self, local: &[T]) -> Vec<Vec<T>>
    where
        T: mpi::traits::Equivalence + Copy + Default,
    {
        let comm = self.comm();
        let n = i32::try_from(local.len()).expect("a gathered buffer holds under 2^31 numbers");
        let mut counts = vec![0i32; self.size];
        comm.all_gather_into(&n, &mut counts[..]);
        let displs: Vec<i32> = counts
            .iter()
            .scan(0i32, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let mut all = vec![T::default(); total];
        {
            let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            comm.all_gather_varcount_into(local, &mut part);
        }
        counts
            .iter()
            .zip(&displs)
            .map(|(&c, &d)| all[d as usize..(d + c) as usize].to_vec())
            .collect()
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn local_size(&self) -> usize {
        self.local_size
    }
    fn all_gather_f32(&self, local: &[f32]) -> Vec<Vec<f32>> {
        self.all_gather(local)
    }
    fn all_gather_f64(&self, local: &[f64]) -> Vec<Vec<f64>> {
        self.all_gather(local)
    }
    fn broadcast_f64(&self, buf: &mut Vec<f64>, root: usize) {
        let comm = self.comm();
        let root = comm.process_at_rank(root as i32);
        let mut len = buf.len() as u64;
        root.broadcast_into(&mut len);
        buf.resize(len as usize, 0.0);
        root.broadcast_into(&mut buf[..]);
    }
    fn barrier(&self) {
        self.comm().barrier();
    }
    fn abort(&self, code: i32) -> ! {
        // Not through the lock: another thread may hold it inside a collective that now never
        // ends, which is why we abort.
        // SAFETY: MPI_Abort may be called from any thread once MPI is initialised.
        unsafe {
            mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, code);
        }
        std::process::exit(code)
    }
}
