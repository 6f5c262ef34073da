/** /v1/files: upload (multipart field `file`, streamed into the store), list, download, delete. */
import { Router, type Request, type RequestHandler } from "express";
import multer from "multer";
import { ValidationError } from "@code-interpreter/core";
import type { FileStore } from "@code-interpreter/files-client";
import { contextOf } from "../context.js";
import type { Deps } from "../deps.js";
import { identityEncodingOnly } from "../encoding.js";
import { BadRequestError } from "../http-errors.js";
import { pageJson, paginate } from "../pagination.js";
import { listQuery } from "../schemas.js";
import { sendStream } from "../streams.js";
import { contentDisposition, fileJson, uploadedFileJson } from "../serialize.js";

interface StoredUpload {
  fileId: string;
  storedFilename: string;
  sizeBytes: number;
}

/** A multer StorageEngine that streams the part straight into the FileStore. */
class FileStoreEngine implements multer.StorageEngine {
  constructor(private readonly files: FileStore) {}

  _handleFile(
    req: Request,
    file: Express.Multer.File,
    cb: (error?: unknown, info?: Partial<Express.Multer.File>) => void,
  ): void {
    const { owner } = contextOf(req);
    this.files.put(file.stream, { filename: file.originalname, owner }).then(
      (meta) => {
        const info: StoredUpload = {
          fileId: meta.fileId,
          storedFilename: meta.filename,
          sizeBytes: meta.sizeBytes,
        };
        cb(null, { ...info, size: meta.sizeBytes } as Partial<Express.Multer.File>);
      },
      (err: unknown) => {
        // The store gave up early (e.g. too large): drain the rest of the part so the
        // multipart parser can finish and report the error.
        file.stream.resume();
        cb(err);
      },
    );
  }

  _removeFile(req: Request, file: Express.Multer.File, cb: (error: Error | null) => void): void {
    const fileId = (file as unknown as Partial<StoredUpload>).fileId;
    if (!fileId) return cb(null);
    this.files.delete(fileId, contextOf(req).owner).then(
      () => cb(null),
      () => cb(null),
    );
  }
}

export function filesRouter(deps: Deps): Router {
  const { files } = deps;
  const router = Router();

  const upload = multer({
    storage: new FileStoreEngine(files),
    limits: { fileSize: files.maxFileBytes, files: 1, fields: 32, parts: 40, fieldSize: 64 * 1024 },
    // Browsers and HTTP clients send UTF-8 file names without a charset parameter.
    defParamCharset: "utf8",
  }).single("file");

  const uploadMiddleware: RequestHandler = (req, res, next) => {
    upload(req, res, (err?: unknown) => {
      if (err === undefined || err === null) return next();
      if (err instanceof Error && !(err instanceof multer.MulterError) && !("status" in err)) {
        // busboy: "Unexpected end of form", "Malformed part header", ...
        return next(new BadRequestError(`malformed multipart body: ${err.message}`, { cause: err }));
      }
      next(err);
    });
  };

  router.post("/", identityEncodingOnly, uploadMiddleware, (req, res) => {
    const file = req.file as (Express.Multer.File & StoredUpload) | undefined;
    if (!file) throw new ValidationError('multipart/form-data body with a file in field "file" is required');
    res.status(201).json(
      uploadedFileJson({
        fileId: file.fileId,
        filename: file.storedFilename,
        sizeBytes: file.sizeBytes,
        uploadTime: 0,
        owner: null,
      }),
    );
  });

  router.get("/", async (req, res) => {
    const query = listQuery.parse(req.query);
    const page = paginate(await files.list(contextOf(req).owner), (f) => [f.uploadTime, f.fileId], query);
    res.json(pageJson("files", { ...page, items: page.items.map(fileJson) }));
  });

  router.get("/:file_id", async (req, res) => {
    const { meta, content } = await files.open(req.params.file_id, contextOf(req).owner);
    await sendStream(res, content, { size: meta.sizeBytes, disposition: contentDisposition(meta.filename) });
  });

  router.delete("/:file_id", async (req, res) => {
    await files.delete(req.params.file_id, contextOf(req).owner);
    res.status(204).end();
  });

  return router;
}
