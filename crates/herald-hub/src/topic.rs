//! STUB (to be replaced): selectors and topic matching.
//! Exact and `*` only; URI templates come with the real module.

/// Matches topic selectors against topics, caching compiled templates.
#[derive(Debug, Default)]
pub struct TopicMatcher {}

impl TopicMatcher {
    /// A matcher whose cache holds at most `capacity` compiled templates.
    pub fn new(_capacity: usize) -> TopicMatcher {
        TopicMatcher {}
    }

    /// Whether `selector` matches `topic`.
    pub fn matches(&self, selector: &str, topic: &str) -> bool {
        selector == "*" || selector == topic
    }
}

/// Whether a selector is a URI template (and so needs the matcher), as
/// opposed to `*` or an exact topic.
pub fn is_template(selector: &str) -> bool {
    selector.contains('{')
}
