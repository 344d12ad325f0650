//! Datasets (being written)
