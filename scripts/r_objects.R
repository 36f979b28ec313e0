# Rule r_objects: a Seurat object and a SingleCellExperiment (.rds) from the R export:
# counts, cell metadata (group columns as factors in the h5ad's category order, columns
# naming cells as character), the finest level as Idents() / colLabels(), the atlas UMAP as
# a reduction and the atlas colours. Reads only the export's 10x HDF5 and CSVs: no Python.
log <- file(snakemake@log[[1]], open = "wt")
sink(log)
sink(log, type = "message")

fail <- function(message) {
  # one line, in the log and on the terminal, as the workflow's Python rules report errors
  sink(type = "message")
  sink()
  line <- paste("abc-downsample: error:", message)
  writeLines(line, log)
  writeLines(line, stderr())
  quit(save = "no", status = 1)
}

read_counts <- function(path) {
  # CSC genes x cells, read straight into a dgCMatrix (no triplet copy)
  h5 <- hdf5r::H5File$new(path, mode = "r")
  on.exit(h5$close_all())
  nnz <- h5[["matrix/data"]]$dims
  if (nnz > .Machine$integer.max) {
    fail(sprintf(paste(
      "%s holds %.0f non-zeros, more than a dgCMatrix can (2^31-1): use",
      "DropletUtils::read10xCounts(path, type = 'HDF5', delayed = TRUE) or sample fewer cells"
    ), path, nnz))
  }
  shape <- h5[["matrix/shape"]][]
  counts <- Matrix::sparseMatrix(
    i = as.integer(h5[["matrix/indices"]][]) + 1L, p = as.integer(h5[["matrix/indptr"]][]),
    x = as.numeric(h5[["matrix/data"]][]), dims = as.integer(shape)
  )
  ids <- h5[["matrix/features/id"]][]
  dimnames(counts) <- list(ids, h5[["matrix/barcodes"]][])
  list(counts = counts, ids = ids, symbols = h5[["matrix/features/name"]][])
}

read_cells <- function(cells_csv, levels_csv) {
  # na.strings = "": "NA" is a neurotransmitter term, a missing value is an empty field.
  # The h5ad's categorical columns become factors with its levels, in its order; the rest
  # stays as read: text naming cells (barcodes, sample ids) character, numbers numeric.
  table <- read.csv(levels_csv, na.strings = character(0), colClasses = "character")
  columns <- unique(table$column)
  cells <- read.csv(cells_csv, row.names = 1, na.strings = "", check.names = FALSE,
                    stringsAsFactors = FALSE,
                    colClasses = setNames(rep("character", length(columns)), columns))
  for (column in columns) {
    cells[[column]] <- factor(cells[[column]], levels = table$level[table$column == column])
  }
  cells
}

read_colors <- function(colors_csv) {
  # list(level = c(term = "#rrggbb", ...)), terms in the h5ad's category order
  table <- read.csv(colors_csv, na.strings = "", colClasses = "character")
  columns <- unique(table$column)
  setNames(lapply(columns, function(c) {
    rows <- table[table$column == c, ]
    setNames(rows$color, rows$term)
  }), columns)
}

save_rds <- function(object, path) {
  # written under a temporary name and renamed: no half-written .rds for a rerun to trust
  tmp <- file.path(dirname(path), paste0(".", basename(path), ".tmp-", Sys.getpid()))
  saveRDS(object, tmp)
  file.rename(tmp, path)
}

main <- function() {
  suppressPackageStartupMessages({
    library(Matrix)
    library(SeuratObject)
    library(SingleCellExperiment)
  })
  inp <- snakemake@input
  out <- snakemake@output
  matrix <- read_counts(inp[["h5"]])
  colors <- read_colors(inp[["colors"]])
  cells <- read_cells(inp[["cells"]], inp[["levels"]])
  idents <- snakemake@params[["idents"]]  # the finest level
  umap <- as.matrix(read.csv(inp[["umap"]], row.names = 1, check.names = FALSE))
  if (!identical(rownames(cells), colnames(matrix$counts)) ||
    !identical(rownames(umap), colnames(matrix$counts))) {
    fail("the export's cells.csv, umap.csv and matrix.h5 list other cells: rerun export_r")
  }

  sce <- SingleCellExperiment(
    assays = list(counts = matrix$counts),
    colData = S4Vectors::DataFrame(cells, check.names = FALSE),
    rowData = S4Vectors::DataFrame(Symbol = matrix$symbols, row.names = matrix$ids)
  )
  if (ncol(umap) > 0) reducedDim(sce, "UMAP") <- umap  # none where the atlas has none
  colLabels(sce) <- cells[[idents]]
  S4Vectors::metadata(sce)$colors <- colors
  save_rds(sce, out[["sce"]])

  # Seurat indexes genes by symbol (made unique); the Ensembl ids stay as feature metadata
  counts <- matrix$counts
  rownames(counts) <- make.unique(matrix$symbols)
  seurat <- CreateSeuratObject(counts = counts, meta.data = cells, project = "abc-downsample")
  seurat[["RNA"]] <- AddMetaData(seurat[["RNA"]], matrix$ids, col.name = "gene_identifier")
  if (ncol(umap) > 0) {
    seurat[["umap"]] <- CreateDimReducObject(embeddings = umap, key = "UMAP_", assay = "RNA")
  }
  Idents(seurat) <- idents
  Misc(seurat, slot = "colors") <- colors
  save_rds(seurat, out[["seurat"]])
  message(sprintf("wrote %d cells x %d genes as Seurat and SingleCellExperiment objects",
                  ncol(counts), nrow(counts)))
}

tryCatch(main(), error = function(err) fail(conditionMessage(err)))
