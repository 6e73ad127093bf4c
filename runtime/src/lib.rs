//! neurograph's runtime: state buffers, connectivity, the step loop, the reference
//! interpreter and the trace writer. Built in the "Runtime and reference interpreter" milestone.
