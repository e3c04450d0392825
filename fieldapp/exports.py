"""Registers as people read them: translated headings and codes, and an XLSX sheet with typed
cells. The deliveries and the dashboard registers describe their columns once with ``Columns``."""

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class Columns:
    labels: dict[str, object]  # column -> heading (lazy text)
    values: dict[str, dict[str, object]] = field(default_factory=dict)  # column -> code -> label
    integers: frozenset[str] = frozenset()
    money: frozenset[str] = frozenset()  # yuan, two decimals
    dates: frozenset[str] = frozenset()  # "YYYY-MM-DD"
    times: frozenset[str] = frozenset()  # local wall-clock "YYYY-MM-DD HH:MM"
    wide: frozenset[str] = frozenset()  # free text: a wider XLSX column
    # Columns that need more than a code -> label lookup, e.g. a list of check items.
    formatters: dict[str, Callable[[str], str]] = field(default_factory=dict)

    def display(self, column: str, value: str) -> str:
        if column in self.formatters:
            return self.formatters[column](value)
        labels = self.values.get(column)
        if labels and value:
            return str(labels.get(value, value))
        return value

    def headings(self, header: tuple[str, ...]) -> list[str]:
        return [str(self.labels.get(name, name)) for name in header]

    def display_rows(self, header: tuple[str, ...], rows: list[list[str]]) -> list[list[str]]:
        return [[self.display(c, v) for c, v in zip(header, row, strict=True)] for row in rows]

    def cell(self, column: str, value: str):
        """A value as an XLSX cell: numbers, yuan, dates and times as such."""
        if value == "":
            return None
        if column in self.integers:
            return int(value)
        if column in self.money:
            return Decimal(value)
        if column in self.dates:
            return date.fromisoformat(value)
        if column in self.times:
            return datetime.strptime(value, "%Y-%m-%d %H:%M")
        return self.display(column, value)

    def to_xlsx(self, title: object, header: tuple[str, ...], rows: list[list[str]]) -> bytes:
        """One sheet: bold translated headings, then the rows; a filter and frozen headings."""
        from openpyxl import Workbook
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        formats = [
            (self.money, "0.00"),
            (self.dates, "yyyy-mm-dd"),
            (self.times, "yyyy-mm-dd hh:mm"),
        ]
        book = Workbook()
        sheet = book.active
        sheet.title = str(title)[:31]
        sheet.append(self.headings(header))
        for heading in sheet[1]:
            heading.font = Font(bold=True)
        for row in rows:
            sheet.append([self.cell(c, v) for c, v in zip(header, row, strict=True)])
        for index, column in enumerate(header, start=1):
            number_format = next((f for names, f in formats if column in names), None)
            if number_format:
                for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                    cell.number_format = number_format
            width = 28 if column in self.wide else 15
            sheet.column_dimensions[get_column_letter(index)].width = width
        sheet.freeze_panes = "A2"
        if rows:
            sheet.auto_filter.ref = sheet.dimensions
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()
