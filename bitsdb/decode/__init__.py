"""Schema containers <-> model records: one module per structure of FORMAT.md.

    sections  section-by-section parsing shared by all records (§9: keep what validates)
    security  owner token block and security descriptor (§1.4, §1.5, §5.4)
    job       job records (§5)
    file      file records (§6)
    legacy    legacy job records with inline files (§7.3, §7.4)
"""

from __future__ import annotations

from .file import decode_file_blob, encode_file, file_from_body
from .job import decode_job_blob, encode_job, job_from_sections, job_to_sections
from .sections import BlobError, parse_prefix, walk_sections
from .security import build_security_descriptor

__all__ = ["BlobError", "build_security_descriptor", "decode_file_blob", "decode_job_blob", "encode_file",
           "encode_job", "file_from_body", "job_from_sections", "job_to_sections", "parse_prefix", "walk_sections"]
