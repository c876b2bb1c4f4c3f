//! The optional built-in Git poller (`spec.configSource.git`): fetches one branch into a
//! bare mirror with the `git` command line and reads the config file at the fetched
//! revision. The reconciler writes the result into the source ConfigMap, so the rest of
//! the pipeline is the same as with Flux or Argo CD.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("running git: {0}")]
    Spawn(std::io::Error),
    #[error("git {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("{path} is not UTF-8 at revision {revision}")]
    NotText { path: String, revision: String },
    #[error("branch name {0:?} is not allowed")]
    BadBranch(String),
}

/// A config file read from Git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub revision: String,
    pub content: String,
}

fn git(dir: Option<&Path>, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    // Never prompt for credentials: a poller has no terminal.
    cmd.env("GIT_TERMINAL_PROMPT", "0").args(args);
    let out = cmd.output().map_err(GitError::Spawn)?;
    if !out.status.success() {
        return Err(GitError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// One mirror directory per repository URL under `cache`.
pub fn mirror_dir(cache: &Path, url: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(url.as_bytes()));
    cache.join(&digest[..16])
}

/// A branch name git would accept and that cannot be read as an option.
fn check_branch(branch: &str) -> Result<(), GitError> {
    let ok = !branch.is_empty()
        && !branch.starts_with('-')
        && !branch.contains("..")
        && branch
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(GitError::BadBranch(branch.to_string()))
    }
}

/// Fetches `branch` of `url` and returns the file at `path` with the branch's revision.
/// Blocking: call from `spawn_blocking`.
pub fn fetch(cache: &Path, url: &str, branch: &str, path: &str) -> Result<Fetched, GitError> {
    check_branch(branch)?;
    let dir = mirror_dir(cache, url);
    if !dir.join("HEAD").exists() {
        std::fs::create_dir_all(&dir).map_err(GitError::Spawn)?;
        git(Some(&dir), &["init", "--bare", "--quiet"])?;
    }
    let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    git(
        Some(&dir),
        &["fetch", "--quiet", "--depth", "1", "--", url, &refspec],
    )?;
    let rev = git(
        Some(&dir),
        &[
            "rev-parse",
            "--verify",
            &format!("refs/heads/{branch}^{{commit}}"),
        ],
    )?;
    let revision = String::from_utf8_lossy(&rev).trim().to_string();
    let blob = git(Some(&dir), &["show", &format!("{revision}:{path}")])?;
    let content = String::from_utf8(blob).map_err(|_| GitError::NotText {
        path: path.to_string(),
        revision: revision.clone(),
    })?;
    Ok(Fetched { revision, content })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    fn commit(repo: &Path, rel: &str, text: &str) {
        let file = repo.join(rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
        run(repo, &["add", "-A"]);
        run(repo, &["commit", "--quiet", "-m", "config"]);
    }

    #[test]
    fn fetches_the_file_at_the_branch_head_and_follows_new_commits() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        run(&repo, &["init", "--quiet", "-b", "main"]);
        commit(
            &repo,
            "clusters/demo/aegis.yaml",
            "raft:\n  heartbeat-interval-ms: 50\n",
        );
        let url = format!("file://{}", repo.display());
        let cache = tmp.path().join("cache");

        let first = fetch(&cache, &url, "main", "clusters/demo/aegis.yaml").unwrap();
        assert_eq!(first.content, "raft:\n  heartbeat-interval-ms: 50\n");
        assert_eq!(first.revision.len(), 40);

        commit(
            &repo,
            "clusters/demo/aegis.yaml",
            "raft:\n  heartbeat-interval-ms: 60\n",
        );
        let second = fetch(&cache, &url, "main", "clusters/demo/aegis.yaml").unwrap();
        assert_ne!(second.revision, first.revision);
        assert!(second.content.contains("60"));
    }

    #[test]
    fn missing_file_branch_or_repo_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        run(&repo, &["init", "--quiet", "-b", "main"]);
        commit(&repo, "a.yaml", "{}\n");
        let url = format!("file://{}", repo.display());
        let cache = tmp.path().join("cache");
        assert!(matches!(
            fetch(&cache, &url, "main", "b.yaml"),
            Err(GitError::Failed { .. })
        ));
        assert!(matches!(
            fetch(&cache, &url, "nope", "a.yaml"),
            Err(GitError::Failed { .. })
        ));
        assert!(matches!(
            fetch(&cache, &url, "--upload-pack=x", "a.yaml"),
            Err(GitError::BadBranch(_))
        ));
        let gone = format!("file://{}/missing", tmp.path().display());
        assert!(matches!(
            fetch(&cache, &gone, "main", "a.yaml"),
            Err(GitError::Failed { .. })
        ));
    }
}
