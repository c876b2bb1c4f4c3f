//! The AEGIS operator: the `AegisCluster` custom resource, a reconciler that runs a
//! Raft group of `aegis-node` replicas on Kubernetes, and the chaos runner.
//!
//! The reconciler is a pipeline — read, validate (pure), plan (pure), build (pure), apply
//! (server-side apply, one field manager), act (one membership or rollout step), status from
//! what was applied — with the Raft-side decisions (membership, config rotation) as pure
//! planners over a [`admin::ClusterAdmin`].

pub mod admin;
pub mod build;
pub mod chaos;
pub mod crd;
pub mod crdgen;
pub mod gitsource;
pub mod membership;
pub mod names;
pub mod rotation;
pub mod validate;

#[cfg(test)]
pub mod fake;
pub mod metrics;
pub mod reconcile;
