//! `eventprop`: train spiking networks with EventProp gradients, apply the EventProp
//! neuron function to arrays on disk, check exact gradients, and benchmark the kernels.
//!
//! Every subcommand lives in its own module; errors are printed as one line and the
//! process exits with status 1 (2 for command-line usage errors, from clap).

mod cmd_bench;
mod cmd_bench_events;
mod cmd_chip;
mod cmd_data;
mod cmd_exact;
mod cmd_export;
mod cmd_neuron;
mod cmd_train;
mod io;

use clap::{Parser, Subcommand};

/// mimalloc keeps freed pages for reuse; with the system allocator every pass over large
/// `(T, B, N)` buffers page-faults fresh memory from the kernel (see DESIGN.md).
#[global_allocator]
static GLOBAL: OutOfMemoryExits = OutOfMemoryExits(mimalloc::MiMalloc);

/// mimalloc, with a failed allocation ending the process as every other error does: one
/// line naming the bytes asked for (`error: memory: …`) and exit status 1, instead of
/// Rust's abort (status 134 and a backtrace). Sizes that follow from the input are bounded
/// before they are allocated (each with its own message naming the input); this is the
/// net for the rest (a machine with less memory than the estimate assumed).
struct OutOfMemoryExits(mimalloc::MiMalloc);

impl OutOfMemoryExits {
    /// Writes `error: memory: an allocation of <size> bytes failed …` to stderr without
    /// allocating, and exits with status 1.
    #[cold]
    fn fail(size: usize) -> ! {
        let mut buf = [0u8; 256];
        let mut n = 0;
        let mut put = |bytes: &[u8]| {
            for &b in bytes {
                if n < buf.len() {
                    buf[n] = b;
                    n += 1;
                }
            }
        };
        put(b"error: memory: an allocation of ");
        let mut digits = [0u8; 20];
        let (mut d, mut v) = (digits.len(), size);
        loop {
            d -= 1;
            digits[d] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        put(&digits[d..]);
        put(b" bytes failed: the machine or the process's limit has less memory than this run needs (reduce the sizes, or lower --memory-limit-gib so that the estimate refuses it up front)\n");
        // SAFETY: writes `n` initialised bytes of `buf` to stderr and ends the process
        // without unwinding or running destructors (nothing may allocate now).
        unsafe {
            libc::write(2, buf.as_ptr().cast(), n);
            libc::_exit(1)
        }
    }
}

// SAFETY: every method forwards to mimalloc's, which upholds `GlobalAlloc`'s contract; a
// null result (failure) never returns.
unsafe impl std::alloc::GlobalAlloc for OutOfMemoryExits {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { self.0.alloc(layout) };
        if p.is_null() {
            Self::fail(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if p.is_null() {
            Self::fail(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { self.0.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { self.0.realloc(ptr, layout, new) };
        if p.is_null() {
            Self::fail(new);
        }
        p
    }
}

/// EventProp spiking-network training and tools.
#[derive(Debug, Parser)]
#[command(name = "eventprop", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a network (the main job: `eventprop train yinyang`).
    Train(cmd_train::TrainArgs),
    /// Evaluate a checkpoint on a generated data set or a data file.
    Eval(cmd_train::EvalArgs),
    /// Apply the EventProp neuron function (forward, optional backward) to .npy arrays.
    Neuron(cmd_neuron::NeuronArgs),
    /// Exact event-based forward and gradients of a network on one input sample.
    Exact(cmd_exact::ExactArgs),
    /// Write generated data sets as files (event `.npz`).
    Data(cmd_data::DataArgs),
    /// Benchmark one training pass of a first hidden layer at named sizes, or an epoch of
    /// `train events` per training configuration (`--task events`).
    Bench(cmd_bench::BenchArgs),
    /// Write a checkpoint's network as a NIR graph (HDF5, for `nir.read` and NIR tools).
    Export(cmd_export::ExportArgs),
    /// Chip tools: `eventprop chip calibrate --chip mock`.
    Chip(cmd_chip::ChipArgs),
}

/// mimalloc's `mi_option_purge_delay` (index 15 of `mi_option_t` in mimalloc 2.x, which
/// `libmimalloc-sys` does not name).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Never return freed pages to the OS: training and benchmarks allocate the same large
    // buffers every pass, and re-faulting them cost ~35 % of a pass (DESIGN.md).
    // SAFETY: sets a process-wide allocator option before any large allocation; the call
    // has no memory-safety preconditions.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // Rust ignores SIGPIPE, so printing into a closed pipe (`eventprop eval … | head -1`)
    // panics; a command-line tool should end quietly instead, as other Unix tools do.
    // SAFETY: restores the default disposition of one signal before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => usage_error(err),
    };
    let result = match cli.command {
        Command::Train(args) => cmd_train::run_train(args),
        Command::Eval(args) => cmd_train::run_eval(args),
        Command::Neuron(args) => cmd_neuron::run(args),
        Command::Exact(args) => cmd_exact::run(args),
        Command::Bench(args) => cmd_bench::run(args),
        Command::Data(args) => cmd_data::run(args),
        Command::Export(args) => cmd_export::run(args),
        Command::Chip(args) => cmd_chip::run(args),
    };
    if let Err(err) = result {
        // One line: the context chain joined by ": ".
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

/// Prints a command-line usage error as one line (help and version print as usual) and
/// exits with status 2.
fn usage_error(err: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    // clap's message: the error, indented details, a blank line, then tips and usage.
    let rendered = err.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    eprintln!("{} (see --help)", message.join(" "));
    std::process::exit(2);
}
