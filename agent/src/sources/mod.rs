//! Where recipes come from besides the command line: the server ([`server`]:
//! the resolved set with its ETag, cached for when the server is away) or
//! an S3 bucket ([`s3`], with credentials from [`crate::aws::profile`] or the
//! instance profile). Either way [`trust`] refuses unsigned or tampered
//! bundles when keys are trusted.

pub mod s3;
pub mod server;
pub mod trust;
