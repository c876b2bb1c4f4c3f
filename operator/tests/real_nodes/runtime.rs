//! A stand-in for the StatefulSet and the kubelet: real `aegis-node` processes on loopback,
//! one per "pod", addressed by ordinal (node id = ordinal + 1). It does only what
//! Kubernetes would do for the operator — create and delete pods from a template, delete
//! a volume on scale-in, report phase and readiness — so the planners under test make
//! every decision themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aegis_config::ClusterConfig;
use aegis_operator::admin::grpc::GrpcClusterAdmin;
use aegis_operator::admin::{ClusterAdmin, Member, NodeEndpoint, NodeStatus};
use aegis_operator::membership::PodView;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const CLUSTER: &str = "demo";
pub const NAMESPACE: &str = "ns";

#[derive(Debug, Clone)]
pub struct Addrs {
    pub peer: String,
    pub client: String,
    pub metrics: String,
}

struct Pod {
    addrs: Addrs,
    /// None while "crash-looping": the container exited and the pod still exists.
    child: Option<Child>,
    /// The config the pod was created from (the pod's config-hash annotation).
    config_hash: String,
}

pub struct PodRuntime {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pods: BTreeMap<u32, Pod>,
    /// Addresses survive a pod's deletion, as a StatefulSet pod keeps its DNS name.
    addrs: BTreeMap<u32, Addrs>,
    template_path: PathBuf,
    template_hash: String,
    /// `--members` for the founding pods, dropped once the group is initialised.
    bootstrap_members: Option<String>,
    /// Config hashes whose pods crash at start, standing in for a config the envelope
    /// accepts but the node cannot run with.
    crashing: BTreeSet<String>,
    pub admin: GrpcClusterAdmin,
}

pub fn node_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("AEGIS_NODE_BIN") {
        return PathBuf::from(p);
    }
    aegis_client::devcluster::resolve_node_bin(None).expect(
        "aegis-node not found: run `cargo build -p aegis-node --bin aegis-node` or set AEGIS_NODE_BIN",
    )
}

pub fn config_hash(yaml: &str) -> String {
    ClusterConfig::from_yaml(yaml)
        .expect("test config passes the envelope")
        .short_hash()
}

pub fn pod_name(ordinal: u32) -> String {
    aegis_operator::names::pod(CLUSTER, ordinal)
}

impl PodRuntime {
    pub fn new(config_yaml: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aegis-opreal-")
            .tempdir()
            .unwrap();
        let mut rt = PodRuntime {
            dir,
            bin: node_bin(),
            pods: BTreeMap::new(),
            addrs: BTreeMap::new(),
            template_path: PathBuf::new(),
            template_hash: String::new(),
            bootstrap_members: None,
            crashing: BTreeSet::new(),
            admin: GrpcClusterAdmin::default(),
        };
        rt.set_template(config_yaml);
        rt
    }

    /// Points the pod template at a config, as the operator does with the ConfigMap
    /// reference; running pods keep theirs until deleted (`updateStrategy: OnDelete`).
    pub fn set_template(&mut self, yaml: &str) {
        let hash = config_hash(yaml);
        let path = self.dir.path().join(format!("config-{hash}.yaml"));
        fs::write(&path, yaml).unwrap();
        self.template_path = path;
        self.template_hash = hash;
    }

    pub fn template_hash(&self) -> &str {
        &self.template_hash
    }

    pub fn crash_on(&mut self, hash: &str) {
        self.crashing.insert(hash.to_string());
    }

    fn ensure_addrs(&mut self, upto: u32) {
        let missing: Vec<u32> = (0..upto).filter(|o| !self.addrs.contains_key(o)).collect();
        let ports = aegis_client::devcluster::free_loopback_ports(missing.len() * 3)
            .expect("free loopback ports");
        for (o, p) in missing.into_iter().zip(ports.chunks(3)) {
            let (pa, pb, pc) = (p[0], p[1], p[2]);
            self.addrs.insert(
                o,
                Addrs {
                    peer: format!("127.0.0.1:{pa}"),
                    client: format!("127.0.0.1:{pb}"),
                    metrics: format!("127.0.0.1:{pc}"),
                },
            );
        }
    }

    pub fn data_dir(&self, ordinal: u32) -> PathBuf {
        self.dir.path().join(format!("pod-{ordinal}")).join("data")
    }

    fn log_path(&self, ordinal: u32) -> PathBuf {
        self.dir
            .path()
            .join(format!("pod-{ordinal}"))
            .join("node.log")
    }

    pub fn log_tail(&self, ordinal: u32) -> String {
        let text = fs::read_to_string(self.log_path(ordinal)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Lines of every pod's log that mention `word`, for failure messages.
    pub fn log_lines(&self, word: &str) -> String {
        let mut out = String::new();
        for o in self.addrs.keys() {
            let text = fs::read_to_string(self.log_path(*o)).unwrap_or_default();
            for line in text.lines().filter(|l| l.contains(word)) {
                out.push_str(&format!("pod {o}: {line}\n"));
            }
        }
        out
    }

    /// The StatefulSet's first creation: `replicas` pods with the bootstrap member list.
    pub fn bootstrap(&mut self, replicas: u32) {
        self.ensure_addrs(replicas);
        let members = (0..replicas)
            .map(|o| {
                let a = &self.addrs[&o];
                format!("{}={}/{}", o + 1, a.peer, a.client)
            })
            .collect::<Vec<_>>()
            .join(",");
        self.bootstrap_members = Some(members);
        for o in 0..replicas {
            self.create_pod(o);
        }
    }

    /// `status.initialized`: the member list leaves the template for good.
    pub fn mark_initialized(&mut self) {
        self.bootstrap_members = None;
    }

    pub fn replicas(&self) -> u32 {
        u32::try_from(self.pods.len()).unwrap()
    }

    fn create_pod(&mut self, ordinal: u32) {
        let data = self.data_dir(ordinal);
        fs::create_dir_all(&data).unwrap();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(ordinal))
            .unwrap();
        let a = self.addrs[&ordinal].clone();
        let crash = self.crashing.contains(&self.template_hash);
        let config = if crash {
            // The container exits at start, as it would on a config it cannot use.
            self.dir.path().join("no-such-config.yaml")
        } else {
            self.template_path.clone()
        };
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--id")
            .arg((ordinal + 1).to_string())
            .arg("--data-dir")
            .arg(&data)
            .arg("--peer-addr")
            .arg(&a.peer)
            .arg("--client-addr")
            .arg(&a.client)
            .arg("--metrics-addr")
            .arg(&a.metrics)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(m) = &self.bootstrap_members {
            cmd.arg("--members").arg(m);
        }
        let child = cmd.spawn().unwrap();
        self.pods.insert(
            ordinal,
            Pod {
                addrs: a,
                child: Some(child),
                config_hash: self.template_hash.clone(),
            },
        );
    }

    fn stop_process(pod: &mut Pod) {
        if let Some(mut c) = pod.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Grows or shrinks the StatefulSet; a shrink deletes the pods' volumes as the
    /// operator's PVC retention policy does.
    pub fn resize(&mut self, replicas: u32) {
        let current = self.replicas();
        self.ensure_addrs(replicas);
        for o in current..replicas {
            self.create_pod(o);
        }
        for o in replicas..current {
            if let Some(mut pod) = self.pods.remove(&o) {
                Self::stop_process(&mut pod);
            }
            let _ = fs::remove_dir_all(self.data_dir(o));
        }
    }

    /// Deletes a pod; the StatefulSet recreates it from the current template.
    pub fn delete_pod(&mut self, name: &str) {
        let ordinal = aegis_operator::names::ordinal_of(CLUSTER, name)
            .unwrap_or_else(|| panic!("not a pod of this cluster: {name}"));
        if let Some(pod) = self.pods.get_mut(&ordinal) {
            Self::stop_process(pod);
        }
        self.create_pod(ordinal);
    }

    /// The pod's volume is lost: its process dies, the data dir goes, the pod comes back
    /// empty (and, the group being initialised, without `--members`).
    pub fn lose_volume(&mut self, ordinal: u32) {
        if let Some(pod) = self.pods.get_mut(&ordinal) {
            Self::stop_process(pod);
        }
        fs::remove_dir_all(self.data_dir(ordinal)).unwrap();
        self.create_pod(ordinal);
    }

    pub fn endpoint(&self, id: u64) -> NodeEndpoint {
        let o = u32::try_from(id - 1).unwrap();
        NodeEndpoint {
            id,
            client_addr: self.addrs[&o].client.clone(),
        }
    }

    pub fn client_addrs(&self, ordinals: std::ops::Range<u32>) -> Vec<String> {
        ordinals.map(|o| self.addrs[&o].client.clone()).collect()
    }

    /// The planner names members by their in-cluster DNS names; on loopback the same
    /// member is reached at the pod's local addresses.
    pub fn loopback_member(&self, m: &Member) -> Member {
        let a = &self.addrs[&u32::try_from(m.id - 1).unwrap()];
        Member {
            id: m.id,
            peer_addr: a.peer.clone(),
            client_addr: a.client.clone(),
            voter: m.voter,
            incarnation: m.incarnation,
        }
    }

    fn alive(pod: &mut Pod) -> bool {
        match pod.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// What the operator reads from the pods: phase (a crash-looping pod is still in
    /// phase Running), readiness from the node's own `/readyz`, the config annotation.
    pub async fn pod_views(&mut self) -> BTreeMap<u32, PodView> {
        let mut out = BTreeMap::new();
        let ordinals: Vec<u32> = self.pods.keys().copied().collect();
        for o in ordinals {
            let pod = self.pods.get_mut(&o).unwrap();
            let alive = Self::alive(pod);
            let metrics = pod.addrs.metrics.clone();
            let hash = pod.config_hash.clone();
            let ready = alive && readyz(&metrics).await;
            out.insert(
                o,
                PodView {
                    ordinal: o,
                    name: pod_name(o),
                    running: true,
                    ready,
                    terminating: false,
                    config_hash: Some(hash),
                    image: Some("aegis-node:test".into()),
                },
            );
        }
        out
    }

    /// `Status` of every pod's node that answers.
    pub async fn statuses(&self) -> BTreeMap<u64, NodeStatus> {
        let mut out = BTreeMap::new();
        for o in self.pods.keys() {
            let id = u64::from(*o) + 1;
            if let Ok(s) = self.admin.status(&self.endpoint(id)).await {
                out.insert(id, s);
            }
        }
        out
    }
}

impl Drop for PodRuntime {
    fn drop(&mut self) {
        for pod in self.pods.values_mut() {
            Self::stop_process(pod);
        }
    }
}

/// The kubelet's readiness probe: `GET /readyz` answered 200.
async fn readyz(addr: &str) -> bool {
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(format!("GET /readyz HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
