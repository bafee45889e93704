//! The discovery-chain kinds from decoded JSON to the typed model, with the span of every route
//! and split so findings point at them.

use crate::decode::{Decoded, Schema};
use crate::entry::typed;
use crate::schema_chain;
use mesh_diagnostics::{Diagnostics, Span};
use mesh_model::chain::{ChainEntry, ServiceResolver, ServiceRouter, ServiceSplitter};

pub(crate) fn schema_of(kind: &str) -> &'static Schema {
    match kind {
        "service-router" => &schema_chain::SERVICE_ROUTER,
        "service-splitter" => &schema_chain::SERVICE_SPLITTER,
        _ => &schema_chain::SERVICE_RESOLVER,
    }
}

pub(crate) fn typed_chain(
    kind: &str,
    d: &Decoded,
    span: Span,
    diags: &mut Diagnostics,
) -> Option<ChainEntry> {
    Some(match kind {
        "service-router" => {
            let mut e: ServiceRouter = typed(d, span, diags)?;
            e.span = span;
            for (i, r) in e.routes.iter_mut().enumerate() {
                r.span = d.at(&format!("/Routes/{i}")).unwrap_or(span);
            }
            ChainEntry::Router(e)
        }
        "service-splitter" => {
            let mut e: ServiceSplitter = typed(d, span, diags)?;
            e.span = span;
            for (i, s) in e.splits.iter_mut().enumerate() {
                s.span = d.at(&format!("/Splits/{i}")).unwrap_or(span);
            }
            ChainEntry::Splitter(e)
        }
        _ => {
            let mut e: ServiceResolver = typed(d, span, diags)?;
            e.span = span;
            ChainEntry::Resolver(e)
        }
    })
}
