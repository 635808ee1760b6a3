//! File helpers shared by the subcommands (being written).
