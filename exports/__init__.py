"""Reports out to spreadsheets: CSV for one form, XLSX with one sheet per form.

`report_table` turns the reports of a form into typed rows (`rows.py`); `write_csv` and
`write_xlsx` format them (`writers.py`); `export` does both for the command line.
"""

from exports.rows import Column, Table, cell_value, report_table
from exports.writers import FORMATS, export, write_csv, write_xlsx

__all__ = [
    "FORMATS",
    "Column",
    "Table",
    "cell_value",
    "export",
    "report_table",
    "write_csv",
    "write_xlsx",
]
