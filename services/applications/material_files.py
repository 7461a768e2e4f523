"""The application materials as files, each rendered once per version of what it shows.

A file is kept by the application's version, its newest step (a flag changes the history, not
the version) and the registry's version (the units' names), with its format: a second request
for the same materials is sent the kept file, and any new step makes a new one. A PDF costs
a good part of a second of CPU, so renders run off the event loop, one per file however many
ask for it at once. Each instance keeps its own files, the least recently sent forgotten first
past `FILES_KEPT` files or `BYTES_KEPT` bytes."""

from collections import OrderedDict
from dataclasses import dataclass

from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool

from services.applications.materials import XLSX_MEDIA_TYPE, Materials, to_xlsx
from services.applications.materials_pdf import PDF_MEDIA_TYPE, to_pdf
from shared.shared_work import SharedWork

FORMATS = {"xlsx": (to_xlsx, XLSX_MEDIA_TYPE), "pdf": (to_pdf, PDF_MEDIA_TYPE)}
FILES_KEPT = 64
BYTES_KEPT = 64 * 1024 * 1024

renders_total = Counter(
    "sanwu_applications_material_renders_total",
    "Application materials rendered (not sent from those kept)",
    ["format"],
)

# (application id, version, newest step id, registry version, format)
FileKey = tuple[str, int, int, int, str]


@dataclass(frozen=True, slots=True)
class MaterialFile:
    content: bytes
    media_type: str
    name: str


def render(materials: Materials, *, file_format: str) -> MaterialFile:
    build, media_type = FORMATS[file_format]
    application = materials.application
    name = f"申报材料-{application.county_code}-{application.period}.{file_format}"
    return MaterialFile(build(materials), media_type, name)


class MaterialFiles:
    def __init__(self, *, files_kept: int = FILES_KEPT, bytes_kept: int = BYTES_KEPT) -> None:
        self.files_kept = files_kept
        self.bytes_kept = bytes_kept
        self._files: OrderedDict[FileKey, MaterialFile] = OrderedDict()
        self._bytes = 0
        self._rendering: SharedWork[FileKey, MaterialFile] = SharedWork()

    async def get(self, materials: Materials, *, file_format: str) -> MaterialFile:
        key = key_of(materials, file_format=file_format)
        kept = self._files.get(key)
        if kept is not None:
            self._files.move_to_end(key)
            return kept

        async def rendered() -> MaterialFile:
            made = await run_in_threadpool(render, materials, file_format=file_format)
            renders_total.labels(file_format).inc()
            self._keep(key, made)
            return made

        return await self._rendering.run(key, rendered)

    def _keep(self, key: FileKey, made: MaterialFile) -> None:
        size = len(made.content)
        if size > self.bytes_kept or key in self._files:
            return
        while self._files and (
            len(self._files) >= self.files_kept or self._bytes + size > self.bytes_kept
        ):
            _, forgotten = self._files.popitem(last=False)
            self._bytes -= len(forgotten.content)
        self._files[key] = made
        self._bytes += size


def key_of(materials: Materials, *, file_format: str) -> FileKey:
    application = materials.application
    newest_step = max((step.step_id for step in materials.steps), default=0)
    return (
        str(application.application_id),
        application.version,
        newest_step,
        materials.registry.version,
        file_format,
    )
