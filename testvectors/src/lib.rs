//! Public wire vectors and the tests that replay them through keybroker-core.
