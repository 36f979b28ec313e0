"""Stage download: the shared cache in the abc_atlas_access layout. The store (S3 or a
local mirror), verified resumable locked downloads, MD5 stamps, receipts."""
