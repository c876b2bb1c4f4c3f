//! A minimal client for any OpenAI-compatible chat-completions endpoint (OpenRouter, a local
//! server, ...). Used only for advice — re-ranking hypotheses and narrating postmortems —
//! never for classification or the envelope (ADR-001).

use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, Instant};

/// Environment variables the endpoint is configured from.
pub const ENV_BASE_URL: &str = "AEGIS_LLM_BASE_URL";
pub const ENV_MODEL: &str = "AEGIS_LLM_MODEL";
pub const ENV_API_KEY: &str = "AEGIS_LLM_API_KEY";
pub const ENV_TIMEOUT_MS: &str = "AEGIS_LLM_TIMEOUT_MS";
/// USD per million prompt / completion tokens, for endpoints that do not report a cost.
pub const ENV_PRICE_PROMPT: &str = "AEGIS_LLM_USD_PER_MTOK_PROMPT";
pub const ENV_PRICE_COMPLETION: &str = "AEGIS_LLM_USD_PER_MTOK_COMPLETION";

#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub usd_per_mtok_prompt: f64,
    pub usd_per_mtok_completion: f64,
}

impl LlmConfig {
    /// `None` unless both the base URL and the model are set: the LLM is opt-in.
    pub fn from_env() -> Option<LlmConfig> {
        let base_url = std::env::var(ENV_BASE_URL).ok().filter(|s| !s.is_empty())?;
        let model = std::env::var(ENV_MODEL).ok().filter(|s| !s.is_empty())?;
        let num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
        Some(LlmConfig {
            base_url,
            model,
            api_key: std::env::var(ENV_API_KEY).ok().filter(|s| !s.is_empty()),
            timeout: Duration::from_millis(
                num(ENV_TIMEOUT_MS)
                    .map(|v| v.max(1.0) as u64)
                    .unwrap_or(20_000),
            ),
            usd_per_mtok_prompt: num(ENV_PRICE_PROMPT).unwrap_or(0.0),
            usd_per_mtok_completion: num(ENV_PRICE_COMPLETION).unwrap_or(0.0),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatReply {
    pub content: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    pub latency_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("LLM endpoint request failed: {0}")]
    Transport(String),
    #[error("LLM endpoint timed out after {0} ms")]
    Timeout(u64),
    #[error("LLM endpoint answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("LLM endpoint answer is not a chat completion: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    /// OpenRouter reports the charge itself.
    #[serde(default)]
    cost: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct LlmClient {
    config: LlmConfig,
    http: reqwest::Client,
}

impl LlmClient {
    pub fn new(config: LlmConfig) -> Result<LlmClient, LlmError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        Ok(LlmClient { config, http })
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    pub async fn chat(&self, system: &str, user: &str) -> Result<ChatReply, LlmError> {
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let body = json!({
            "model": self.config.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
        });
        let started = Instant::now();
        let mut request = self.http.post(&url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                LlmError::Timeout(self.config.timeout.as_millis() as u64)
            } else {
                LlmError::Transport(e.to_string())
            }
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            if e.is_timeout() {
                LlmError::Timeout(self.config.timeout.as_millis() as u64)
            } else {
                LlmError::Transport(e.to_string())
            }
        })?;
        if !status.is_success() {
            let mut body = text;
            body.truncate(500);
            return Err(LlmError::Status {
                status: status.as_u16(),
                body,
            });
        }
        let parsed: Completion =
            serde_json::from_str(&text).map_err(|e| LlmError::Malformed(e.to_string()))?;
        let content = parsed
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| LlmError::Malformed("no choices[0].message.content".into()))?;
        let (prompt_tokens, completion_tokens, reported) = parsed
            .usage
            .map(|u| (u.prompt_tokens, u.completion_tokens, u.cost))
            .unwrap_or((0, 0, None));
        let cost_usd = reported.unwrap_or(
            prompt_tokens as f64 * self.config.usd_per_mtok_prompt / 1e6
                + completion_tokens as f64 * self.config.usd_per_mtok_completion / 1e6,
        );
        Ok(ChatReply {
            content,
            prompt_tokens,
            completion_tokens,
            cost_usd,
            latency_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// The first `{ ... }` object in a reply; models often wrap JSON in prose or code fences.
pub fn extract_json_object(text: &str) -> Option<serde_json::Value> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    if end <= start {
        return None;
    }
    serde_json::from_str(&text[start..=end]).ok()
}
