//! Which account a request acts as, and the one way a handler gets that account's connection.
//!
//! In the open local deployment (the demo) the page serves one account to everyone, over one
//! connection made with that account's inbox prefix. A handler never builds a client itself:
//! it asks [`Tenancy::client`], so that when web users log in, the session is turned into its
//! account's connection in this one place, and NATS refuses whatever lies outside it.

use contact_import_client::Client;

pub enum Tenancy {
    /// No login: every request acts as the one account.
    Open { client: Client },
}

impl Tenancy {
    /// The connection of the account this request acts as.
    pub fn client(&self) -> &Client {
        match self {
            Self::Open { client } => client,
        }
    }
}
