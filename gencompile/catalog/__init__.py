"""Records of the language's named choices, read by every layer of gencompile.

A named choice (a GAN loss, a gradient penalty) is written once here, as a frozen record
of plain data: its name, its words for `explain` and the model card, its formulas as the
generated code's comments show them, and the NAMES of the runtime functions that compute
it. Each side reads the record and keeps only what is its own:

- the spec derives its `Literal` of allowed names from the records;
- the compiler copies the records into its plan, and the templates render their fields
  (function names through `ident`, formulas and names through `prose`);
- the runtime resolves each record's function names to its functions in one table, built
  at import, so a record without its function fails on import and in a test.

Modules here import the standard library only (a test checks it): the spec and the
compiler stay free of TensorFlow, and the runtime stays free of the spec, the compiler
and pydantic, while all three read one record.
"""
