"""Images out of a request: multipart files or one raw body, checked and decoded, or a clear 4xx.

Nothing here opens a path: an upload's file name is only a label for the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image
from starlette.datastructures import UploadFile
from starlette.requests import Request

from imagefit.data.images import ImageReadError, open_image_bytes
from imagefit.serve.limits import Limits
from imagefit.serve.problems import Problem

# An HTTP status for each kind of undecodable image (imagefit.data.images.ImageReadError.kind).
STATUS_OF_KIND = {"empty": 400, "not-image": 415, "too-large": 413, "truncated": 422, "damaged": 422}
HOW_TO_SEND = "send images as multipart files (curl -F file=@photo.jpg) or one raw image body"


@dataclass
class Upload:
    """One image as received: a label for it, its declared content type and its bytes."""

    name: str
    content_type: str
    data: bytes


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header, lower case."""
    return (content_type or "").split(";")[0].strip().lower()


def is_image_type(content_type: str | None) -> bool:
    """True for image/* and the generic types a client sends when it does not know."""
    kind = media_type(content_type)
    return kind.startswith("image/") or kind in ("", "application/octet-stream")


async def read_uploads(request: Request, limits: Limits) -> list[Upload]:
    """The images a /predict request carries, in order; a Problem when it carries none."""
    kind = media_type(request.headers.get("content-type"))
    if kind == "multipart/form-data":
        uploads = await _multipart(request, limits)
    elif is_image_type(kind):
        uploads = [Upload("image", kind, await request.body())]
    else:
        raise Problem(415, f"content type {kind or 'none'} is not an image upload: {HOW_TO_SEND}")
    if not uploads:
        raise Problem(400, f"the request holds no image: {HOW_TO_SEND}")
    return uploads


async def _multipart(request: Request, limits: Limits) -> list[Upload]:
    form = await request.form(max_files=limits.max_files, max_fields=limits.max_files)
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        uploads = []
        for i, upload in enumerate(files):
            name = upload.filename or f"image {i}"
            if not is_image_type(upload.content_type):
                raise Problem(415, f"{name}: content type {media_type(upload.content_type)} is not an image")
            uploads.append(Upload(name, media_type(upload.content_type), await upload.read()))
        return uploads
    finally:
        await form.close()


def decode_uploads(uploads: list[Upload], min_size: int | None, limits: Limits) -> list[Image.Image]:
    """Each upload as an RGB picture (JPEGs decoded small when the model allows), or a Problem."""
    pictures = []
    for upload in uploads:
        try:
            pictures.append(open_image_bytes(upload.data, upload.name, min_size, limits.pixel_limit))
        except ImageReadError as exc:
            raise Problem(STATUS_OF_KIND.get(exc.kind, 422), str(exc)) from exc
    return pictures
