# tend-cli has no scriptlets. The `cli` variant of the tend-server crate's
# [package.metadata.generate-rpm] points its four scripts here, because a
# cargo-generate-rpm variant otherwise inherits the server's scriptlets.
exit 0
