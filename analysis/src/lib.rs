//! Passes over recorded traces and over the model graph. Built after the runtime.
