//! The Rego adapter of the `PolicyEngine` port: Rego v1 files from a
//! directory, evaluated in-process by `regorus`, reloaded when they change,
//! and a runner for their `test_*` rules (`casewire policy test`).
//!
//! # Layout
//! - [`RegoPolicy`]: loads `*.rego` (not `*_test.rego`) from a directory,
//!   or the policy built into the binary; `decide` evaluates
//!   `data.casewire.authz.decision`, `filter` `data.casewire.authz.filter`.
//! - [`RegoPolicy::watch`]: polls the files and swaps in a new engine; a
//!   policy that fails to compile keeps the old one and logs why.
//! - [`run_tests`]: evaluates every `test_*` rule of every file.
//! - [`opa::OpaServer`]: the same policy asked of a running OPA server.

mod grants;
pub mod opa;
pub mod sample;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use casewire_ports::{
    Decision, DefinitionAccessMap, PolicyEngine, PolicyError, Resource, Subject, VisibilityFilter, policy_input,
};
use tokio_util::sync::CancellationToken;

/// The policy shipped in the binary, used when no policy directory exists.
pub const BUILT_IN: &str = include_str!("../../../policies/casewire/authz.rego");

const DECISION: &str = "data.casewire.authz.decision";
const FILTER: &str = "data.casewire.authz.filter";

/// Distinguishes every policy ever loaded in this process, so a thread's
/// cached engine is never used for another policy or an older version.
static GENERATION: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Each thread keeps a clone of the engine it last evaluated with;
    /// regorus resets its evaluation state on every `eval_rule`, so reusing
    /// it across inputs is safe, and it saves a clone per decision.
    static ENGINE: RefCell<Option<(u64, regorus::Engine)>> = const { RefCell::new(None) };
}

/// How a check says the policy has no `grants` rule at all.
const MISSING: &str = "not defined";

/// A loaded policy: the compiled engine and what it was built from.
struct Loaded {
    generation: u64,
    engine: regorus::Engine,
    /// Newest modification time of the files, to notice changes.
    stamp: Option<SystemTime>,
    /// The policy is the shipped one, byte for byte, and so decides from
    /// its grants (see [`grants`]): the 10,000-case property test vouches
    /// for exactly this text. A sampled check at load could not prove an
    /// edited policy's grants equal to its rules, so any other policy is
    /// evaluated in full.
    shipped: bool,
}

impl Loaded {
    fn new(engine: regorus::Engine, stamp: Option<SystemTime>, shipped: bool, origin: &str) -> Self {
        if !shipped {
            tracing::info!(
                policy = origin,
                "A policy other than the shipped one: every decision is a full evaluation"
            );
        }
        Loaded {
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            engine,
            stamp,
            shipped,
        }
    }
}

/// Rego policies evaluated in-process.
pub struct RegoPolicy {
    dir: Option<PathBuf>,
    loaded: RwLock<Arc<Loaded>>,
    grants: grants::GrantsCache,
}

impl std::fmt::Debug for RegoPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegoPolicy")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The `*.rego` files below `dir`, sorted, optionally without tests.
fn rego_files(dir: &Path, with_tests: bool) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", d.display()))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rego")
                && (with_tests || !path.to_string_lossy().ends_with("_test.rego"))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn newest_stamp(files: &[PathBuf]) -> Option<SystemTime> {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .max()
}

fn compile(sources: &[(String, String)]) -> Result<regorus::Engine, String> {
    let mut engine = regorus::Engine::new();
    for (path, rego) in sources {
        engine
            .add_policy(path.clone(), rego.clone())
            .map_err(|e| format!("{path}: {e}"))?;
    }
    // Compile-time errors (unknown functions, conflicts) show up on the
    // first evaluation; find them now rather than on a request.
    engine.set_input(regorus::Value::new_object());
    engine
        .eval_rule(DECISION.into())
        .map_err(|e| format!("evaluating {DECISION}: {e}"))?;
    Ok(engine)
}

fn load_dir(dir: &Path) -> Result<Loaded, String> {
    let files = rego_files(dir, false)?;
    if files.is_empty() {
        return Err(format!("no *.rego files in {}", dir.display()));
    }
    let mut sources = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        sources.push((f.display().to_string(), text));
    }
    let shipped = sources.len() == 1 && sources[0].1 == BUILT_IN;
    Ok(Loaded::new(
        compile(&sources)?,
        newest_stamp(&files),
        shipped,
        &dir.display().to_string(),
    ))
}

impl RegoPolicy {
    /// Loads the policies of `dir`, or the built-in policy when `dir` is `None`.
    pub fn load(dir: Option<&Path>) -> Result<Self, PolicyError> {
        let loaded = match dir {
            Some(d) => load_dir(d).map_err(PolicyError::Invalid)?,
            None => Loaded::new(
                compile(&[("built-in/authz.rego".into(), BUILT_IN.into())]).map_err(PolicyError::Invalid)?,
                None,
                true,
                "built-in",
            ),
        };
        Ok(RegoPolicy {
            dir: dir.map(Path::to_owned),
            loaded: RwLock::new(Arc::new(loaded)),
            grants: grants::GrantsCache::new(),
        })
    }

    /// Reloads when a file changed; keeps the running policy if the new one
    /// does not compile. Returns whether a new policy is in force.
    pub fn reload_if_changed(&self) -> bool {
        let Some(dir) = &self.dir else { return false };
        let stamp = rego_files(dir, false).ok().and_then(|f| newest_stamp(&f));
        let current = self.current();
        if stamp == current.stamp {
            return false;
        }
        match load_dir(dir) {
            Ok(loaded) => {
                if let Ok(mut slot) = self.loaded.write() {
                    *slot = Arc::new(loaded);
                }
                tracing::info!(dir = %dir.display(), "Reloaded the policies");
                true
            }
            Err(error) => {
                // Remember the stamp so the same broken file is reported once.
                if let Ok(mut slot) = self.loaded.write() {
                    *slot = Arc::new(Loaded {
                        generation: current.generation,
                        engine: current.engine.clone(),
                        stamp,
                        shipped: current.shipped,
                    });
                }
                tracing::error!(%error, "The changed policy does not compile; keeping the previous one");
                false
            }
        }
    }

    /// Polls the policy files every `every` until `shutdown`.
    pub fn watch(self: &Arc<Self>, every: Duration, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let policy = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                policy.reload_if_changed();
            }
        })
    }

    fn current(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Evaluates `rule` with `input`, returning the JSON value.
    pub fn eval(&self, rule: &str, input: serde_json::Value) -> Result<serde_json::Value, PolicyError> {
        eval_with(&self.current(), rule, input)
    }

    /// Whether decisions come from the policy's grants: it is the shipped
    /// policy, byte for byte.
    pub fn fast_path(&self) -> bool {
        self.current().shipped
    }

    /// Compares the grants of the policy in force with its full
    /// evaluation on `samples` random inputs drawn from `seed` (see
    /// [`sample::Sampler`]); `Err` describes the first disagreement.
    pub fn check_fast_path(&self, samples: usize, seed: u64) -> Result<(), String> {
        check_fast_path(&self.current(), samples, seed)
    }

    /// The decision by full evaluation, never from the grants.
    pub fn decide_in_full(
        &self,
        subject: &Subject,
        definitions: &DefinitionAccessMap,
        action: casewire_ports::Action,
        resource: Option<&Resource>,
    ) -> Result<Decision, PolicyError> {
        decide_in_full(&self.current(), subject, definitions, action, resource)
    }

    /// The filter by full evaluation, never from the grants.
    pub fn filter_in_full(
        &self,
        subject: &Subject,
        definitions: &DefinitionAccessMap,
    ) -> Result<VisibilityFilter, PolicyError> {
        filter_in_full(&self.current(), subject, definitions)
    }

    /// The subject's grants under the policy in force, from the cache or
    /// compiled now; `None` when this policy is evaluated in full.
    fn grants(
        &self,
        subject: &Subject,
        definitions: &DefinitionAccessMap,
    ) -> Result<Option<Arc<grants::Grants>>, PolicyError> {
        let loaded = self.current();
        if !loaded.shipped {
            return Ok(None);
        }
        // Everything the rule reads besides constants: the cache key.
        let text = serde_json::to_string(&(subject, definitions))
            .map_err(|e| PolicyError::Invalid(format!("policy input: {e}")))?;
        let key = (loaded.generation, text);
        if let Some(found) = self.grants.get(&key) {
            return Ok(Some(found));
        }
        let compiled = Arc::new(compile_grants(&loaded, subject, definitions).map_err(PolicyError::Invalid)?);
        self.grants.put(key, compiled.clone());
        Ok(Some(compiled))
    }
}

/// Evaluates `rule` of `loaded` with `input` on this thread's engine.
fn eval_with(loaded: &Loaded, rule: &str, input: serde_json::Value) -> Result<serde_json::Value, PolicyError> {
    let value = ENGINE.with_borrow_mut(|cached| {
        if cached.as_ref().is_none_or(|(g, _)| *g != loaded.generation) {
            *cached = Some((loaded.generation, loaded.engine.clone()));
        }
        let Some((_, engine)) = cached.as_mut() else {
            return Err(PolicyError::Invalid("no policy engine".into()));
        };
        engine.set_input(regorus::Value::from(input));
        engine
            .eval_rule(rule.into())
            .map_err(|e| PolicyError::Invalid(format!("{rule}: {e}")))
    })?;
    serde_json::to_value(&value).map_err(|e| PolicyError::Invalid(format!("{rule}: {e}")))
}

fn decide_in_full(
    loaded: &Loaded,
    subject: &Subject,
    definitions: &DefinitionAccessMap,
    action: casewire_ports::Action,
    resource: Option<&Resource>,
) -> Result<Decision, PolicyError> {
    let input = policy_input(subject, definitions, Some(action), resource);
    let value = eval_with(loaded, DECISION, input)?;
    serde_json::from_value(value.clone()).map_err(|e| PolicyError::Invalid(format!("{DECISION} = {value}: {e}")))
}

fn filter_in_full(
    loaded: &Loaded,
    subject: &Subject,
    definitions: &DefinitionAccessMap,
) -> Result<VisibilityFilter, PolicyError> {
    let value = eval_with(loaded, FILTER, policy_input(subject, definitions, None, None))?;
    serde_json::from_value(value.clone()).map_err(|e| PolicyError::Invalid(format!("{FILTER} = {value}: {e}")))
}

fn compile_grants(
    loaded: &Loaded,
    subject: &Subject,
    definitions: &DefinitionAccessMap,
) -> Result<grants::Grants, String> {
    let input = grants::grants_input(subject, definitions);
    let value = eval_with(loaded, grants::GRANTS, input).map_err(|e| {
        if e.to_string().contains("not a valid rule path") {
            format!("{}: {MISSING}", grants::GRANTS)
        } else {
            e.to_string()
        }
    })?;
    if value == serde_json::json!("<undefined>") {
        return Err(format!("{}: {MISSING}", grants::GRANTS));
    }
    grants::Grants::from_answer(subject, value)
}

/// Random decisions asked of each random subject in a check: compiling a
/// subject's grants is the expensive part.
const DECISIONS_PER_SUBJECT: usize = 8;

/// Both ways, on `samples` random decisions: see [`RegoPolicy::check_fast_path`].
fn check_fast_path(loaded: &Loaded, samples: usize, seed: u64) -> Result<(), String> {
    let mut sample = sample::Sampler::new(seed);
    let mut done = 0;
    while done < samples {
        let (subject, definitions) = sample.subject_and_definitions();
        let grants = compile_grants(loaded, &subject, &definitions)?;
        let full = filter_in_full(loaded, &subject, &definitions).map_err(|e| e.to_string())?;
        if grants.filter() != full {
            return Err(format!(
                "the filter of {subject:?} with {definitions:?} differs: grants {:?}, full {full:?}",
                grants.filter()
            ));
        }
        for _ in 0..DECISIONS_PER_SUBJECT.min(samples - done) {
            let action = sample.action();
            let resource = sample.resource(&subject);
            let fast = grants.decide(action, resource.as_ref());
            let full =
                decide_in_full(loaded, &subject, &definitions, action, resource.as_ref()).map_err(|e| e.to_string())?;
            if fast != full {
                return Err(format!(
                    "{} by {subject:?} on {resource:?} with {definitions:?} differs: grants {fast:?}, full {full:?}",
                    action.as_str()
                ));
            }
            done += 1;
        }
    }
    Ok(())
}

#[async_trait]
impl PolicyEngine for RegoPolicy {
    async fn decide(
        &self,
        subject: &Subject,
        definitions: &DefinitionAccessMap,
        action: casewire_ports::Action,
        resource: Option<&Resource>,
    ) -> Result<Decision, PolicyError> {
        match self.grants(subject, definitions)? {
            Some(grants) => Ok(grants.decide(action, resource)),
            None => self.decide_in_full(subject, definitions, action, resource),
        }
    }

    async fn filter(
        &self,
        subject: &Subject,
        definitions: &DefinitionAccessMap,
    ) -> Result<VisibilityFilter, PolicyError> {
        match self.grants(subject, definitions)? {
            Some(grants) => Ok(grants.filter()),
            None => self.filter_in_full(subject, definitions),
        }
    }
}

/// The outcome of one `test_*` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// `data.<package>.<rule>`.
    pub name: String,
    /// `None` when it passed; otherwise why not.
    pub failure: Option<String>,
}

/// The names of the `test_*` rules a Rego file defines.
fn test_rules(source: &str) -> Vec<String> {
    let mut names: Vec<String> = source
        .lines()
        .filter_map(|line| {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            name.starts_with("test_").then_some(name)
        })
        .collect();
    names.dedup();
    names
}

fn package_of(source: &str) -> Option<String> {
    source
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .map(|p| p.trim().to_owned())
}

/// Runs every `test_*` rule of the `*.rego` files below `dir` (policies and
/// tests loaded together, as `opa test` does).
pub fn run_tests(dir: &Path) -> Result<Vec<TestResult>, String> {
    let files = rego_files(dir, true)?;
    let mut sources = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        sources.push((f.display().to_string(), text));
    }
    let mut engine = regorus::Engine::new();
    for (path, rego) in &sources {
        engine
            .add_policy(path.clone(), rego.clone())
            .map_err(|e| format!("{path}: {e}"))?;
    }
    let mut results = Vec::new();
    for (path, rego) in &sources {
        let Some(package) = package_of(rego) else {
            return Err(format!("{path}: no package"));
        };
        for rule in test_rules(rego) {
            let name = format!("data.{package}.{rule}");
            let mut engine = engine.clone();
            let failure = match engine.eval_rule(name.clone()) {
                Ok(regorus::Value::Bool(true)) => None,
                Ok(regorus::Value::Undefined) => Some("undefined (a condition failed)".to_owned()),
                Ok(v) => Some(format!("evaluated to {v}")),
                Err(e) => Some(format!("error: {e}")),
            };
            results.push(TestResult { name, failure });
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_rules_and_packages() {
        let src = "package a.b_test\n\ntest_one if { true }\ntest_two if {\n  false\n}\nhelper := 1\n";
        assert_eq!(test_rules(src), vec!["test_one", "test_two"]);
        assert_eq!(package_of(src).as_deref(), Some("a.b_test"));
    }

    #[test]
    fn the_shipped_policy_tests_pass() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let results = run_tests(&dir).unwrap();
        assert!(results.len() >= 10, "{results:?}");
        let failed: Vec<_> = results.iter().filter(|r| r.failure.is_some()).collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn a_reused_engine_answers_each_input_on_its_own() {
        let policy = RegoPolicy::load(None).unwrap();
        let input = |roles: &[&str]| serde_json::json!({"subject": {"roles": roles, "groups": [], "tenant": "t", "username": "u"}, "action": "definition.import"});
        for _ in 0..3 {
            assert_eq!(policy.eval(DECISION, input(&["case-admin"])).unwrap()["allow"], true);
            assert_eq!(policy.eval(DECISION, input(&["case-viewer"])).unwrap()["allow"], false);
        }
    }

    #[test]
    fn a_broken_change_keeps_the_old_policy() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("authz.rego");
        std::fs::write(&file, BUILT_IN).unwrap();
        let policy = RegoPolicy::load(Some(dir.path())).unwrap();
        let carol = serde_json::json!({"subject": {"roles": ["case-admin"], "groups": [], "tenant": "t", "username": "carol"}, "action": "definition.import"});
        assert_eq!(policy.eval(DECISION, carol.clone()).unwrap()["allow"], true);

        // Filesystem times can be coarse: make the change visibly newer.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&file, "package casewire.authz\n\nthis is not rego").unwrap();
        let newer = SystemTime::now() + Duration::from_secs(2);
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(newer).unwrap();
        assert!(!policy.reload_if_changed(), "a broken policy is not taken");
        assert_eq!(
            policy.eval(DECISION, carol.clone()).unwrap()["allow"],
            true,
            "the old one still decides"
        );

        let stricter = BUILT_IN.replace("is_admin if \"case-admin\" in roles", "is_admin if false");
        std::fs::write(&file, stricter).unwrap();
        f.set_modified(newer + Duration::from_secs(2)).unwrap();
        assert!(policy.reload_if_changed(), "a good change is taken");
        assert_eq!(policy.eval(DECISION, carol).unwrap()["allow"], false);
    }
}
