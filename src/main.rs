//! The `metalearn` command-line tool.

fn main() {
    // Built with the feature `mpi`: one rank of an MPI job (or a job of one without mpirun).
    #[cfg(feature = "mpi")]
    let _universe = start_mpi();
    if let Err(e) = metalearn::cli::run() {
        // Print the error and its causes, skipping a cause its parent message already quotes.
        let mut message = e.to_string();
        for cause in e.chain().skip(1) {
            let text = cause.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
        }
        // `error: MESSAGE` and exit status 1 (under MPI: naming the rank, and stopping all).
        metalearn::dist::fail(&message);
    }
}

/// Initialises MPI and installs its world ([`metalearn::dist`]); with several ranks, each rank's
/// default thread count is the node's cores over the ranks on the node (unless `--threads` or
/// `RAYON_NUM_THREADS` says otherwise), and a panic in any rank stops them all. The universe
/// returned finalises MPI when dropped.
#[cfg(feature = "mpi")]
fn start_mpi() -> Option<mpi::environment::Universe> {
    use metalearn::dist::{self, Collective};
    let (universe, world) = match dist::mpi::init() {
        Ok(Some(u)) => u,
        Ok(None) => return None,
        Err(e) => dist::fail(&format!("starting MPI: {e}")),
    };
    if world.size() > 1 {
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let threads = dist::default_threads(cores, world.local_size());
            // Single-threaded still: nothing else reads the environment yet.
            std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        }
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            dist::fail("panicked (see the message above)");
        }));
    }
    if dist::install(Box::new(world)).is_err() {
        dist::fail("starting MPI: a world was installed already");
    }
    if dist::world().size() > 1 {
        announce_ranks();
    }
    Some(universe)
}

/// Prints on rank 0 which process and host each rank is, so that a launcher's report of a dead
/// process (MPICH: `BAD TERMINATION ... PID P RUNNING AT H`) names the rank.
#[cfg(feature = "mpi")]
fn announce_ranks() {
    let mut host = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is passed.
    let ok = unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) } == 0;
    let len = host.iter().position(|&b| b == 0).unwrap_or(host.len());
    let host = if ok {
        String::from_utf8_lossy(&host[..len]).into_owned()
    } else {
        "?".into()
    };
    let w = metalearn::dist::world();
    let me = format!("rank {} pid {} on {host}", w.rank(), std::process::id());
    let all = metalearn::dist::gather_strings(&[me]);
    if w.rank() == 0 {
        eprintln!("metalearn: {} MPI ranks: {}", w.size(), all.join(", "));
    }
}
