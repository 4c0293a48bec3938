//! Service discovery (Curator's ServiceDiscovery): each instance of a service registers an
//! ephemeral node `base/<service>/<instance id>` holding its description as JSON, kept
//! there while it lives; clients query instances, or follow them with a cached provider
//! that picks one per call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache::PathChildrenCache;
use crate::client::{Client, CreateMode};
use crate::error::{Error, Result};

use super::join;
use super::nodes::PersistentNode;

/// One instance of a service, stored as JSON in the field names Curator's
/// JsonInstanceSerializer uses, so Java clients can read them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstance {
    pub name: String,
    pub id: String,
    pub address: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub ssl_port: Option<u16>,
    /// Anything the service wants to publish.
    #[serde(default)]
    pub payload: serde_json::Value,
    #[serde(rename = "registrationTimeUTC", default)]
    pub registration_time_utc: i64,
    #[serde(default = "dynamic")]
    pub service_type: String,
}

fn dynamic() -> String {
    "DYNAMIC".to_string()
}

impl ServiceInstance {
    /// An instance with a random id, registered now.
    pub fn new(name: &str, address: &str, port: u16, payload: serde_json::Value) -> ServiceInstance {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        ServiceInstance {
            name: name.to_string(),
            id: format!("{:032x}", rand::random::<u128>()),
            address: address.to_string(),
            port: Some(port),
            ssl_port: None,
            payload,
            registration_time_utc: now as i64,
            service_type: dynamic(),
        }
    }

    fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::Client(format!("encoding instance {}: {e}", self.id)))
    }

    fn from_json(path: &str, data: &[u8]) -> Result<ServiceInstance> {
        serde_json::from_slice(data)
            .map_err(|e| Error::BadArguments { message: format!("{path} is not a service instance: {e}") })
    }
}

/// Registers this process's instances and queries everyone's.
pub struct ServiceDiscovery {
    client: Client,
    base: String,
    registered: Mutex<HashMap<String, PersistentNode>>,
}

impl ServiceDiscovery {
    /// Discovery under `base` (e.g. `/services`).
    pub fn new(client: &Client, base: &str) -> ServiceDiscovery {
        ServiceDiscovery { client: client.clone(), base: base.to_string(), registered: Mutex::new(HashMap::new()) }
    }

    fn instance_path(&self, i: &ServiceInstance) -> String {
        join(&join(&self.base, &i.name), &i.id)
    }

    /// Registers an instance (an ephemeral node of this client's session, re-created if it
    /// is lost). Returns once it is visible.
    pub async fn register(&self, instance: &ServiceInstance) -> Result<()> {
        let node = PersistentNode::start(
            &self.client,
            &self.instance_path(instance),
            CreateMode::Ephemeral,
            instance.to_json()?,
        );
        if !node.wait_for_initial_create(self.client.request_timeout()).await {
            return Err(Error::Client(format!("registering {} timed out", instance.id)));
        }
        if let Some(old) = self.registered.lock().unwrap().insert(instance.id.clone(), node) {
            drop(old);
        }
        Ok(())
    }

    /// Publishes a new description of a registered instance.
    pub async fn update(&self, instance: &ServiceInstance) -> Result<()> {
        let data = instance.to_json()?;
        let node = self.registered.lock().unwrap().remove(&instance.id);
        let Some(node) = node else {
            return Err(Error::BadArguments { message: format!("instance {} is not registered here", instance.id) });
        };
        let r = node.set_data(data).await;
        self.registered.lock().unwrap().insert(instance.id.clone(), node);
        r
    }

    pub async fn unregister(&self, instance: &ServiceInstance) -> Result<()> {
        let node = self.registered.lock().unwrap().remove(&instance.id);
        match node {
            Some(n) => n.close().await,
            None => Ok(()),
        }
    }

    /// The names of every service with a registration directory.
    pub async fn query_for_names(&self) -> Result<Vec<String>> {
        match self.client.children(&self.base).await {
            Ok(n) => Ok(n),
            Err(Error::NoNode { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Every registered instance of a service.
    pub async fn query_for_instances(&self, name: &str) -> Result<Vec<ServiceInstance>> {
        let dir = join(&self.base, name);
        let ids = match self.client.children(&dir).await {
            Ok(n) => n,
            Err(Error::NoNode { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for id in ids {
            let p = join(&dir, &id);
            match self.client.get(&p).await {
                Ok((data, _)) => out.push(ServiceInstance::from_json(&p, &data)?),
                Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub async fn query_for_instance(&self, name: &str, id: &str) -> Result<Option<ServiceInstance>> {
        let p = join(&join(&self.base, name), id);
        match self.client.get(&p).await {
            Ok((data, _)) => Ok(Some(ServiceInstance::from_json(&p, &data)?)),
            Err(Error::NoNode { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A provider for one service, following its instances with a cache.
    pub async fn provider(&self, name: &str, strategy: ProviderStrategy) -> Result<ServiceProvider> {
        let cache = PathChildrenCache::start(&self.client, &join(&self.base, name)).await?;
        Ok(ServiceProvider { cache, strategy, next: AtomicUsize::new(0) })
    }

    /// Unregisters everything this process registered.
    pub async fn close(&self) -> Result<()> {
        let nodes: Vec<PersistentNode> = self.registered.lock().unwrap().drain().map(|(_, n)| n).collect();
        for n in nodes {
            n.close().await?;
        }
        Ok(())
    }
}

/// How a provider picks an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderStrategy {
    RoundRobin,
    Random,
}

/// Picks instances of one service from a cache of its registrations (Curator's
/// ServiceProvider).
pub struct ServiceProvider {
    cache: PathChildrenCache,
    strategy: ProviderStrategy,
    next: AtomicUsize,
}

impl ServiceProvider {
    /// Every instance now (undecodable registrations are skipped).
    pub fn get_all_instances(&self) -> Vec<ServiceInstance> {
        self.cache.current().into_iter().filter_map(|d| ServiceInstance::from_json(&d.path, &d.data).ok()).collect()
    }

    /// One instance by the strategy, or `None` if there is none.
    pub fn get_instance(&self) -> Option<ServiceInstance> {
        let all = self.get_all_instances();
        if all.is_empty() {
            return None;
        }
        let i = match self.strategy {
            ProviderStrategy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % all.len(),
            ProviderStrategy::Random => rand::random::<u64>() as usize % all.len(),
        };
        Some(all[i].clone())
    }

    /// Waits until the provider's cache reflects `zxid` (e.g. right after a registration
    /// this client made).
    pub async fn wait_for_zxid(&self, zxid: u64, timeout: Duration) -> bool {
        self.cache.wait_for_zxid(zxid, timeout).await
    }
}
