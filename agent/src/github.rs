//! The agent's only write path: the GitHub REST API through octocrab. Every call is retried
//! with exponential backoff on rate limits (429, or 403 with a rate-limit message) and server
//! errors; any other failure is returned as a clear error.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use std::future::Future;
use std::time::Duration;

pub const ENV_TOKEN: &str = "GITHUB_TOKEN";
pub const ENV_API_URL: &str = "AEGIS_GITHUB_API_URL";

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub API {method} {route} failed with HTTP {status}: {message}")]
    Api {
        method: &'static str,
        route: String,
        status: u16,
        message: String,
    },
    #[error("GitHub API {method} {route} still failing after {attempts} attempts (rate limit or server error): {message}")]
    GaveUp {
        method: &'static str,
        route: String,
        attempts: u32,
        message: String,
    },
    #[error("GitHub API {method} {route}: {message}")]
    Transport {
        method: &'static str,
        route: String,
        message: String,
    },
    #[error("GitHub answer to {route} is not what was expected: {message}")]
    Malformed { route: String, message: String },
    #[error("cannot set up the GitHub client: {0}")]
    Setup(String),
}

impl GitHubError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    pub text: String,
    pub sha: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct PullRef {
    pub number: u64,
    pub html_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct IssueRef {
    pub number: u64,
    pub html_url: String,
    pub title: String,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_backoff: Duration::from_secs(1),
        }
    }
}

#[derive(Clone)]
pub struct GitHub {
    client: octocrab::Octocrab,
    pub owner: String,
    pub repo: String,
    retry: RetryPolicy,
}

enum Outcome<T> {
    Done(T),
    Retry(String),
    Fail(GitHubError),
}

fn classify<T>(method: &'static str, route: &str, r: Result<T, octocrab::Error>) -> Outcome<T> {
    match r {
        Ok(v) => Outcome::Done(v),
        Err(octocrab::Error::GitHub { source, .. }) => {
            let status = source.status_code.as_u16();
            let rate_limited = status == 429
                || (status == 403 && source.message.to_lowercase().contains("rate limit"));
            if rate_limited || status >= 500 {
                Outcome::Retry(format!("HTTP {status}: {}", source.message))
            } else {
                Outcome::Fail(GitHubError::Api {
                    method,
                    route: route.to_string(),
                    status,
                    message: source.message.clone(),
                })
            }
        }
        Err(octocrab::Error::Serde { source, .. }) => Outcome::Fail(GitHubError::Malformed {
            route: route.to_string(),
            message: source.to_string(),
        }),
        Err(octocrab::Error::Json { source, .. }) => Outcome::Fail(GitHubError::Malformed {
            route: route.to_string(),
            message: source.to_string(),
        }),
        // Connection refused, reset, timeout: worth another try.
        Err(other) => Outcome::Retry(other.to_string()),
    }
}

impl GitHub {
    /// `api_url` is the API root (`https://api.github.com` in production, a local fake in tests).
    pub fn new(
        api_url: &str,
        token: Option<String>,
        owner: &str,
        repo: &str,
        retry: RetryPolicy,
    ) -> Result<GitHub, GitHubError> {
        let mut builder = octocrab::Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| GitHubError::Setup(format!("bad API URL {api_url}: {e}")))?
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)));
        if let Some(t) = token {
            builder = builder.personal_token(t);
        }
        let client = builder
            .build()
            .map_err(|e| GitHubError::Setup(e.to_string()))?;
        Ok(GitHub {
            client,
            owner: owner.to_string(),
            repo: repo.to_string(),
            retry,
        })
    }

    fn route(&self, tail: &str) -> String {
        format!("/repos/{}/{}/{}", self.owner, self.repo, tail)
    }

    async fn call<T, F, Fut>(
        &self,
        method: &'static str,
        route: &str,
        f: F,
    ) -> Result<T, GitHubError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, octocrab::Error>>,
    {
        let mut last = String::new();
        for attempt in 0..self.retry.attempts.max(1) {
            if attempt > 0 {
                let wait = crate::telemetry::prometheus::backoff(self.retry.base_backoff, attempt);
                tracing::warn!(%route, attempt, ?wait, reason = %last, "retrying GitHub call");
                tokio::time::sleep(wait).await;
            }
            match classify(method, route, f().await) {
                Outcome::Done(v) => return Ok(v),
                Outcome::Fail(e) => return Err(e),
                Outcome::Retry(why) => last = why,
            }
        }
        Err(GitHubError::GaveUp {
            method,
            route: route.to_string(),
            attempts: self.retry.attempts.max(1),
            message: last,
        })
    }

    /// A file's text and blob sha at `git_ref`; `None` when it does not exist.
    pub async fn get_file(
        &self,
        path: &str,
        git_ref: &str,
    ) -> Result<Option<FileContent>, GitHubError> {
        let route = self.route(&format!("contents/{}", path.trim_start_matches('/')));
        let params = json!({ "ref": git_ref });
        let r: Result<serde_json::Value, GitHubError> = self
            .call("GET", &route, || self.client.get(&route, Some(&params)))
            .await;
        let value = match r {
            Ok(v) => v,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let malformed = |m: &str| GitHubError::Malformed {
            route: route.clone(),
            message: m.to_string(),
        };
        let sha = value
            .get("sha")
            .and_then(|v| v.as_str())
            .ok_or_else(|| malformed("no sha (is the path a directory?)"))?;
        let encoded = value
            .get("content")
            .and_then(|v| v.as_str())
            .ok_or_else(|| malformed("no content"))?;
        let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| malformed(&format!("content is not base64: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| malformed("content is not UTF-8"))?;
        Ok(Some(FileContent {
            text,
            sha: sha.to_string(),
        }))
    }

    pub async fn find_open_pull(&self, branch: &str) -> Result<Option<PullRef>, GitHubError> {
        let route = self.route("pulls");
        let params = json!({ "state": "open", "head": format!("{}:{}", self.owner, branch) });
        let pulls: Vec<PullRef> = self
            .call("GET", &route, || self.client.get(&route, Some(&params)))
            .await?;
        Ok(pulls.into_iter().next())
    }

    /// Commit sha a branch points at; `None` when the branch does not exist.
    pub async fn branch_sha(&self, branch: &str) -> Result<Option<String>, GitHubError> {
        let route = self.route(&format!("git/ref/heads/{branch}"));
        let r: Result<serde_json::Value, GitHubError> = self
            .call("GET", &route, || self.client.get(&route, None::<&()>))
            .await;
        match r {
            Ok(v) => v
                .pointer("/object/sha")
                .and_then(|s| s.as_str())
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| GitHubError::Malformed {
                    route,
                    message: "no object.sha".into(),
                }),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates `branch` at `sha`. Returns false when it already existed (GitHub answers 422),
    /// which a re-run after a half-finished attempt treats as "reuse it".
    pub async fn create_branch(&self, branch: &str, sha: &str) -> Result<bool, GitHubError> {
        let route = self.route("git/refs");
        let body = json!({ "ref": format!("refs/heads/{branch}"), "sha": sha });
        let r: Result<serde_json::Value, GitHubError> = self
            .call("POST", &route, || self.client.post(&route, Some(&body)))
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(422) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn put_file(
        &self,
        path: &str,
        branch: &str,
        text: &str,
        previous_sha: Option<&str>,
        message: &str,
    ) -> Result<(), GitHubError> {
        let route = self.route(&format!("contents/{}", path.trim_start_matches('/')));
        let mut body = json!({
            "message": message,
            "content": base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
            "branch": branch,
        });
        if let Some(sha) = previous_sha {
            body["sha"] = json!(sha);
        }
        let _: serde_json::Value = self
            .call("PUT", &route, || self.client.put(&route, Some(&body)))
            .await?;
        Ok(())
    }

    pub async fn create_pull(
        &self,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
    ) -> Result<PullRef, GitHubError> {
        let route = self.route("pulls");
        let payload = json!({ "title": title, "head": head, "base": base, "body": body });
        self.call("POST", &route, || self.client.post(&route, Some(&payload)))
            .await
    }

    /// An open issue with exactly this title (and label), if any.
    pub async fn find_open_issue(
        &self,
        title: &str,
        label: &str,
    ) -> Result<Option<IssueRef>, GitHubError> {
        let route = self.route("issues");
        let params = json!({ "state": "open", "labels": label, "per_page": 100 });
        let issues: Vec<IssueRef> = self
            .call("GET", &route, || self.client.get(&route, Some(&params)))
            .await?;
        Ok(issues.into_iter().find(|i| i.title == title))
    }

    pub async fn create_issue(
        &self,
        title: &str,
        body: &str,
        label: &str,
    ) -> Result<IssueRef, GitHubError> {
        let route = self.route("issues");
        let payload = json!({ "title": title, "body": body, "labels": [label] });
        self.call("POST", &route, || self.client.post(&route, Some(&payload)))
            .await
    }
}
