//! The goods the synthetic administration imports: a small built-in
//! catalogue written for this project, or the real HS 2022 nomenclature.

use std::path::Path;

use crate::SynthError;

/// Broad trade pattern of a product: decides its likely origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Food,
    Textile,
    Steel,
    Chemical,
    Machinery,
    Electronics,
    Vehicles,
    Consumer,
    Building,
}

impl Group {
    pub fn sector(self) -> &'static str {
        match self {
            Group::Food => "food and agriculture",
            Group::Textile => "textiles and apparel",
            Group::Steel => "metals",
            Group::Chemical => "chemicals and pharmaceuticals",
            Group::Machinery => "machinery",
            Group::Electronics => "electronics",
            Group::Vehicles => "vehicles",
            Group::Consumer => "consumer goods",
            Group::Building => "construction materials",
        }
    }
}

/// One HS6 subheading the generator can declare.
#[derive(Debug, Clone)]
pub struct Product {
    pub hs6: String,
    /// Official (nomenclature) description.
    pub description: String,
    /// Ways a declarant writes these goods; each names the true goods.
    pub commercial: Vec<String>,
    /// UN/ECE Rec. 20 quantity unit.
    pub unit: &'static str,
    /// Median unit value, national currency per quantity unit.
    pub unit_value: f64,
    pub kg_per_unit: f64,
    /// Median quantity per declaration item.
    pub typical_qty: f64,
    pub group: Group,
}

impl Product {
    pub fn hs4(&self) -> &str {
        &self.hs6[..4]
    }
    pub fn chapter(&self) -> &str {
        &self.hs6[..2]
    }
}

/// A row of the nomenclature table (`reference.hs_nomenclature`).
#[derive(Debug, Clone)]
pub struct NomenclatureEntry {
    pub code: String,
    pub description: String,
    pub parent: Option<String>,
    pub level: i32,
    pub section: String,
}

pub struct Catalogue {
    pub products: Vec<Product>,
    pub nomenclature: Vec<NomenclatureEntry>,
}

/// HS section (Roman numeral) of a chapter.
pub fn section_of(chapter: u32) -> &'static str {
    const SECTIONS: [(u32, &str); 21] = [
        (5, "I"),
        (14, "II"),
        (15, "III"),
        (24, "IV"),
        (27, "V"),
        (38, "VI"),
        (40, "VII"),
        (43, "VIII"),
        (46, "IX"),
        (49, "X"),
        (63, "XI"),
        (67, "XII"),
        (70, "XIII"),
        (71, "XIV"),
        (83, "XV"),
        (85, "XVI"),
        (89, "XVII"),
        (92, "XVIII"),
        (93, "XIX"),
        (96, "XX"),
        (99, "XXI"),
    ];
    SECTIONS
        .iter()
        .find(|(last, _)| chapter <= *last)
        .map_or("XXI", |(_, s)| s)
}

/// hs6, official description, commercial descriptions (`|`-separated),
/// unit, unit value, kg per unit, typical quantity, group.
type Spec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    f64,
    f64,
    f64,
    Group,
);

use Group::*;

const BUILT_IN: &[Spec] = &[
    (
        "020130",
        "Meat of bovine animals; boneless cuts, fresh or chilled",
        "FRESH BONELESS BEEF CUTS|chilled beef striploin boneless|CARNE DE RES DESHUESADA REFRIGERADA",
        "KGM",
        48.0,
        1.0,
        8000.0,
        Food,
    ),
    (
        "020230",
        "Meat of bovine animals; boneless cuts, frozen",
        "FROZEN BONELESS BEEF|frozen beef chuck boneless cartons|CARNE DE RES DESHUESADA CONGELADA",
        "KGM",
        36.0,
        1.0,
        12000.0,
        Food,
    ),
    (
        "030617",
        "Shrimps and prawns; frozen",
        "FROZEN SHRIMP PEELED|frozen white prawns 31/40|CAMARON CONGELADO",
        "KGM",
        62.0,
        1.0,
        5000.0,
        Food,
    ),
    (
        "040210",
        "Milk and cream; in powder, fat content not exceeding 1.5%",
        "SKIMMED MILK POWDER|nonfat dry milk 25kg bags|LECHE EN POLVO DESCREMADA",
        "KGM",
        22.0,
        1.0,
        15000.0,
        Food,
    ),
    (
        "040221",
        "Milk and cream; in powder, fat content exceeding 1.5%, unsweetened",
        "WHOLE MILK POWDER 26% FAT|full cream milk powder|LECHE ENTERA EN POLVO",
        "KGM",
        26.0,
        1.0,
        15000.0,
        Food,
    ),
    (
        "090111",
        "Coffee; not roasted, not decaffeinated",
        "GREEN COFFEE BEANS|raw arabica coffee beans|CAFE ORO SIN TOSTAR",
        "KGM",
        30.0,
        1.0,
        18000.0,
        Food,
    ),
    (
        "090121",
        "Coffee; roasted, not decaffeinated",
        "ROASTED COFFEE BEANS|roasted ground coffee 500g|CAFE TOSTADO MOLIDO",
        "KGM",
        70.0,
        1.0,
        3000.0,
        Food,
    ),
    (
        "100630",
        "Rice; semi-milled or wholly milled",
        "MILLED WHITE RICE LONG GRAIN|polished rice 5% broken|ARROZ BLANCO PILADO",
        "KGM",
        5.5,
        1.0,
        40000.0,
        Food,
    ),
    (
        "100640",
        "Rice; broken",
        "BROKEN RICE|rice brokens for feed|ARROZ QUEBRADO",
        "KGM",
        3.2,
        1.0,
        40000.0,
        Food,
    ),
    (
        "151190",
        "Palm oil and its fractions; refined",
        "REFINED PALM OIL RBD|rbd palm olein in bulk|ACEITE DE PALMA REFINADO",
        "KGM",
        9.5,
        1.0,
        20000.0,
        Food,
    ),
    (
        "170114",
        "Cane sugar; raw, other than containing added flavouring",
        "RAW CANE SUGAR|brown raw sugar bulk|AZUCAR CRUDA DE CANA",
        "KGM",
        4.1,
        1.0,
        30000.0,
        Food,
    ),
    (
        "170199",
        "Sugars; refined cane or beet sugar, solid",
        "REFINED WHITE SUGAR|white crystal sugar 50kg|AZUCAR REFINADA",
        "KGM",
        5.6,
        1.0,
        30000.0,
        Food,
    ),
    (
        "220300",
        "Beer made from malt",
        "BEER IN CANS 355ML|lager beer bottles|CERVEZA DE MALTA",
        "LTR",
        9.0,
        1.05,
        12000.0,
        Food,
    ),
    (
        "220840",
        "Rum and other spirits from fermented sugar-cane products",
        "AGED RUM 750ML|dark rum bottles|RON AÑEJO",
        "LTR",
        65.0,
        1.3,
        2000.0,
        Food,
    ),
    (
        "250100",
        "Salt and pure sodium chloride",
        "INDUSTRIAL SALT|refined table salt 1kg|SAL REFINADA",
        "KGM",
        0.9,
        1.0,
        25000.0,
        Building,
    ),
    (
        "252329",
        "Portland cement; other than white",
        "GREY PORTLAND CEMENT TYPE I|portland cement 42.5kg bags|CEMENTO PORTLAND GRIS",
        "KGM",
        0.85,
        1.0,
        100000.0,
        Building,
    ),
    (
        "300420",
        "Medicaments; containing antibiotics, in measured doses",
        "AMOXICILLIN CAPSULES 500MG|antibiotic tablets azithromycin|MEDICAMENTO ANTIBIOTICO",
        "KGM",
        420.0,
        1.0,
        150.0,
        Chemical,
    ),
    (
        "300490",
        "Medicaments; other, in measured doses",
        "PARACETAMOL TABLETS 500MG|ibuprofen tablets blister|MEDICAMENTOS ANALGESICOS",
        "KGM",
        260.0,
        1.0,
        200.0,
        Chemical,
    ),
    (
        "310210",
        "Fertilisers; urea",
        "UREA 46% N GRANULAR|granular urea fertilizer bulk|UREA FERTILIZANTE",
        "KGM",
        3.6,
        1.0,
        60000.0,
        Chemical,
    ),
    (
        "330499",
        "Beauty or make-up preparations; other",
        "FACE CREAM MOISTURIZING|skin care lotion 200ml|CREMA FACIAL COSMETICA",
        "KGM",
        95.0,
        1.0,
        400.0,
        Chemical,
    ),
    (
        "330510",
        "Shampoos",
        "HAIR SHAMPOO 400ML|anti dandruff shampoo bottles|CHAMPU PARA EL CABELLO",
        "KGM",
        28.0,
        1.0,
        2000.0,
        Chemical,
    ),
    (
        "392010",
        "Plates, sheets, film of polymers of ethylene, non-cellular",
        "POLYETHYLENE FILM ROLLS|ldpe stretch film|PELICULA DE POLIETILENO",
        "KGM",
        14.0,
        1.0,
        6000.0,
        Consumer,
    ),
    (
        "392321",
        "Sacks and bags; of polymers of ethylene",
        "POLYETHYLENE BAGS|plastic shopping bags hdpe|BOLSAS PLASTICAS DE POLIETILENO",
        "KGM",
        16.0,
        1.0,
        4000.0,
        Consumer,
    ),
    (
        "401110",
        "New pneumatic tyres; of rubber, for motor cars",
        "PASSENGER CAR TYRES 195/65R15|radial tires for cars|LLANTAS PARA AUTOMOVIL",
        "NAR",
        380.0,
        8.5,
        400.0,
        Consumer,
    ),
    (
        "401120",
        "New pneumatic tyres; of rubber, for buses or lorries",
        "TRUCK TYRES 11R22.5|radial tyres for buses and trucks|LLANTAS PARA CAMION",
        "NAR",
        1900.0,
        55.0,
        120.0,
        Consumer,
    ),
    (
        "610910",
        "T-shirts, singlets and other vests; of cotton, knitted",
        "COTTON T-SHIRTS|100% cotton knitted tee shirts|CAMISETAS DE ALGODON",
        "NAR",
        28.0,
        0.18,
        3000.0,
        Textile,
    ),
    (
        "610990",
        "T-shirts, singlets and other vests; of other textile materials, knitted",
        "POLYESTER T-SHIRTS|synthetic knitted sport shirts|CAMISETAS DE POLIESTER",
        "NAR",
        22.0,
        0.15,
        3000.0,
        Textile,
    ),
    (
        "620342",
        "Trousers and shorts; men's or boys', of cotton",
        "MENS COTTON JEANS|denim trousers for men|PANTALONES DE ALGODON PARA HOMBRE",
        "NAR",
        85.0,
        0.6,
        1200.0,
        Textile,
    ),
    (
        "620462",
        "Trousers and shorts; women's or girls', of cotton",
        "WOMENS COTTON JEANS|ladies denim pants|PANTALONES DE ALGODON PARA MUJER",
        "NAR",
        80.0,
        0.5,
        1200.0,
        Textile,
    ),
    (
        "640399",
        "Footwear; with uppers of leather, other",
        "LEATHER SHOES|mens leather dress shoes|CALZADO DE CUERO",
        "PR",
        210.0,
        0.9,
        500.0,
        Consumer,
    ),
    (
        "640411",
        "Footwear; sports footwear with uppers of textile materials",
        "SPORTS SHOES TEXTILE UPPER|running sneakers mesh|ZAPATILLAS DEPORTIVAS",
        "PR",
        120.0,
        0.7,
        800.0,
        Consumer,
    ),
    (
        "690721",
        "Ceramic flags and tiles; water absorption not exceeding 0.5%",
        "PORCELAIN FLOOR TILES 60X60|glazed porcelain tiles|PISO CERAMICO PORCELANATO",
        "MTK",
        75.0,
        22.0,
        2500.0,
        Building,
    ),
    (
        "690722",
        "Ceramic flags and tiles; water absorption exceeding 0.5% but not exceeding 10%",
        "CERAMIC WALL TILES|stoneware wall tiles glazed|AZULEJO CERAMICO",
        "MTK",
        58.0,
        18.0,
        2500.0,
        Building,
    ),
    (
        "721051",
        "Flat-rolled iron or non-alloy steel; plated or coated with aluminium-zinc",
        "GALVALUME STEEL SHEET|aluzinc coated steel coils|LAMINA DE ACERO GALVALUME",
        "KGM",
        7.8,
        1.0,
        25000.0,
        Steel,
    ),
    (
        "721049",
        "Flat-rolled iron or non-alloy steel; otherwise plated or coated with zinc",
        "GALVANIZED STEEL SHEET|hot dip galvanized coils|LAMINA GALVANIZADA",
        "KGM",
        7.2,
        1.0,
        25000.0,
        Steel,
    ),
    (
        "721420",
        "Bars and rods of iron or non-alloy steel; with indentations or ribs",
        "STEEL REBAR 3/8|deformed reinforcing bars grade 60|VARILLA CORRUGADA DE ACERO",
        "KGM",
        5.4,
        1.0,
        60000.0,
        Steel,
    ),
    (
        "721499",
        "Bars and rods of iron or non-alloy steel; other, hot-rolled",
        "STEEL ROUND BARS|hot rolled plain steel bars|BARRAS LISAS DE ACERO",
        "KGM",
        5.9,
        1.0,
        40000.0,
        Steel,
    ),
    (
        "731815",
        "Screws and bolts; of iron or steel, threaded",
        "STEEL BOLTS M12|hex bolts zinc plated|PERNOS DE ACERO",
        "KGM",
        24.0,
        1.0,
        3000.0,
        Steel,
    ),
    (
        "731816",
        "Nuts; of iron or steel, threaded",
        "STEEL NUTS M12|hex nuts galvanized|TUERCAS DE ACERO",
        "KGM",
        21.0,
        1.0,
        3000.0,
        Steel,
    ),
    (
        "760410",
        "Aluminium; bars, rods and profiles, of aluminium not alloyed",
        "ALUMINIUM BARS UNALLOYED|pure aluminium rods|BARRAS DE ALUMINIO SIN ALEAR",
        "KGM",
        24.0,
        1.0,
        8000.0,
        Steel,
    ),
    (
        "760429",
        "Aluminium; bars, rods and profiles, of aluminium alloys, other than hollow",
        "ALUMINIUM PROFILES FOR WINDOWS|extruded aluminium alloy profiles|PERFILES DE ALUMINIO",
        "KGM",
        29.0,
        1.0,
        8000.0,
        Steel,
    ),
    (
        "841510",
        "Air conditioning machines; window or wall types",
        "SPLIT AIR CONDITIONER 12000BTU|wall mounted air conditioning unit|AIRE ACONDICIONADO TIPO PARED",
        "NAR",
        2600.0,
        38.0,
        150.0,
        Machinery,
    ),
    (
        "841582",
        "Air conditioning machines; other, incorporating a refrigerating unit",
        "CENTRAL AIR CONDITIONING UNIT|package type ac unit 5 ton|EQUIPO DE AIRE ACONDICIONADO CENTRAL",
        "NAR",
        14500.0,
        160.0,
        20.0,
        Machinery,
    ),
    (
        "841810",
        "Refrigerators and freezers; combined, fitted with separate doors",
        "REFRIGERATOR FREEZER 14 CU FT|two door fridge with freezer|REFRIGERADORA CON CONGELADOR",
        "NAR",
        4200.0,
        62.0,
        120.0,
        Machinery,
    ),
    (
        "841821",
        "Refrigerators; household, compression-type",
        "HOUSEHOLD REFRIGERATOR ONE DOOR|compact fridge compression|REFRIGERADORA DOMESTICA",
        "NAR",
        2500.0,
        40.0,
        150.0,
        Machinery,
    ),
    (
        "845011",
        "Washing machines; household, fully-automatic, capacity not exceeding 10kg",
        "AUTOMATIC WASHING MACHINE 9KG|top load washer|LAVADORA AUTOMATICA",
        "NAR",
        3100.0,
        45.0,
        120.0,
        Machinery,
    ),
    (
        "847130",
        "Portable automatic data processing machines, weighing not more than 10kg",
        "LAPTOP COMPUTER 15.6IN|notebook computers core i5|COMPUTADORA PORTATIL",
        "NAR",
        5200.0,
        2.2,
        200.0,
        Electronics,
    ),
    (
        "847141",
        "Automatic data processing machines; comprising a CPU and input/output unit",
        "DESKTOP COMPUTER|all in one pc workstation|COMPUTADORA DE ESCRITORIO",
        "NAR",
        6100.0,
        9.0,
        80.0,
        Electronics,
    ),
    (
        "850760",
        "Electric accumulators; lithium-ion",
        "LITHIUM ION BATTERIES|li-ion battery packs 18650|BATERIAS DE LITIO",
        "NAR",
        95.0,
        0.5,
        4000.0,
        Electronics,
    ),
    (
        "850710",
        "Electric accumulators; lead-acid, for starting piston engines",
        "CAR BATTERIES 12V|lead acid starter batteries|BATERIAS PARA AUTOMOVIL",
        "NAR",
        720.0,
        15.0,
        300.0,
        Electronics,
    ),
    (
        "851713",
        "Smartphones",
        "SMARTPHONES 128GB|android mobile phones|TELEFONOS CELULARES INTELIGENTES",
        "NAR",
        2300.0,
        0.3,
        500.0,
        Electronics,
    ),
    (
        "851762",
        "Machines for the reception, conversion and transmission of data",
        "WIFI ROUTERS|network switches 24 port|EQUIPO DE RED ROUTERS",
        "NAR",
        640.0,
        0.8,
        300.0,
        Electronics,
    ),
    (
        "852872",
        "Television receivers; colour",
        "LED TELEVISION 55IN|smart tv 4k uhd|TELEVISORES LED",
        "NAR",
        3300.0,
        16.0,
        200.0,
        Electronics,
    ),
    (
        "854442",
        "Electric conductors; for a voltage not exceeding 1000V, fitted with connectors",
        "USB CABLES WITH CONNECTORS|power cords with plugs|CABLES CON CONECTORES",
        "KGM",
        85.0,
        1.0,
        1500.0,
        Electronics,
    ),
    (
        "854449",
        "Electric conductors; for a voltage not exceeding 1000V, not fitted with connectors",
        "COPPER ELECTRIC WIRE THHN|building wire 12 awg|ALAMBRE ELECTRICO DE COBRE",
        "KGM",
        68.0,
        1.0,
        3000.0,
        Electronics,
    ),
    (
        "870322",
        "Vehicles; spark-ignition engine, cylinder capacity over 1000cc, not over 1500cc",
        "SEDAN 1.5L GASOLINE|compact passenger car 1300cc|AUTOMOVIL SEDAN 1.5 LITROS",
        "NAR",
        118000.0,
        1100.0,
        6.0,
        Vehicles,
    ),
    (
        "870323",
        "Vehicles; spark-ignition engine, cylinder capacity over 1500cc, not over 3000cc",
        "SUV 2.5L GASOLINE|pickup passenger vehicle 2400cc|CAMIONETA SUV 2.5 LITROS",
        "NAR",
        215000.0,
        1600.0,
        5.0,
        Vehicles,
    ),
    (
        "870380",
        "Vehicles; with only electric motor for propulsion",
        "ELECTRIC CAR BEV|battery electric vehicle sedan|AUTOMOVIL ELECTRICO",
        "NAR",
        260000.0,
        1700.0,
        3.0,
        Vehicles,
    ),
    (
        "871120",
        "Motorcycles; reciprocating piston engine, over 50cc, not over 250cc",
        "MOTORCYCLE 150CC|street motorbike 125cc|MOTOCICLETA 150CC",
        "NAR",
        9800.0,
        120.0,
        40.0,
        Vehicles,
    ),
    (
        "870830",
        "Vehicles; parts, brakes and servo-brakes",
        "BRAKE PADS|disc brake pads and shoes|PASTILLAS DE FRENO",
        "KGM",
        48.0,
        1.0,
        1500.0,
        Vehicles,
    ),
    (
        "870899",
        "Vehicles; parts and accessories, other",
        "AUTO PARTS ASSORTED|car suspension parts|REPUESTOS PARA VEHICULOS",
        "KGM",
        55.0,
        1.0,
        2000.0,
        Vehicles,
    ),
    (
        "842952",
        "Self-propelled mechanical shovels with a 360 degree revolving superstructure",
        "HYDRAULIC EXCAVATOR 20T|crawler excavator|EXCAVADORA HIDRAULICA",
        "NAR",
        920000.0,
        20000.0,
        1.0,
        Machinery,
    ),
    (
        "850110",
        "Electric motors; of an output not exceeding 37.5W",
        "SMALL DC MOTORS|micro electric motors 12v|MOTORES ELECTRICOS PEQUEÑOS",
        "NAR",
        38.0,
        0.2,
        2000.0,
        Machinery,
    ),
    (
        "901890",
        "Medical, surgical or veterinary instruments and appliances; other",
        "SURGICAL INSTRUMENTS|medical devices disposable sets|INSTRUMENTAL MEDICO",
        "KGM",
        520.0,
        1.0,
        150.0,
        Chemical,
    ),
    (
        "940161",
        "Seats; upholstered, with wooden frames",
        "UPHOLSTERED SOFA WOODEN FRAME|fabric armchairs|SOFAS TAPIZADOS",
        "NAR",
        2100.0,
        35.0,
        60.0,
        Consumer,
    ),
    (
        "940360",
        "Furniture; wooden, other",
        "WOODEN FURNITURE|wood dining tables and cabinets|MUEBLES DE MADERA",
        "NAR",
        1400.0,
        30.0,
        100.0,
        Consumer,
    ),
    (
        "950300",
        "Toys; tricycles, scooters, dolls, puzzles and other toys",
        "PLASTIC TOYS ASSORTED|children toys dolls and cars|JUGUETES PLASTICOS",
        "KGM",
        42.0,
        1.0,
        1500.0,
        Consumer,
    ),
];

/// Headings of the built-in catalogue (their HS 2022 descriptions, short).
const BUILT_IN_HEADINGS: &[(&str, &str)] = &[
    ("0201", "Meat of bovine animals; fresh or chilled"),
    ("0202", "Meat of bovine animals; frozen"),
    ("0306", "Crustaceans"),
    (
        "0402",
        "Milk and cream; concentrated or containing added sugar",
    ),
    ("0901", "Coffee"),
    ("1006", "Rice"),
    ("1511", "Palm oil and its fractions"),
    ("1701", "Cane or beet sugar"),
    ("2203", "Beer made from malt"),
    ("2208", "Undenatured ethyl alcohol under 80% vol; spirits"),
    ("2501", "Salt"),
    ("2523", "Portland cement, aluminous cement, slag cement"),
    (
        "3004",
        "Medicaments, in measured doses or packed for retail sale",
    ),
    ("3102", "Mineral or chemical fertilisers; nitrogenous"),
    ("3304", "Beauty or make-up preparations"),
    ("3305", "Preparations for use on the hair"),
    (
        "3920",
        "Other plates, sheets, film, foil and strip, of plastics",
    ),
    (
        "3923",
        "Articles for the conveyance or packing of goods, of plastics",
    ),
    ("4011", "New pneumatic tyres, of rubber"),
    (
        "6109",
        "T-shirts, singlets and other vests, knitted or crocheted",
    ),
    ("6203", "Men's or boys' suits, jackets, trousers"),
    (
        "6204",
        "Women's or girls' suits, jackets, dresses, trousers",
    ),
    ("6403", "Footwear with uppers of leather"),
    ("6404", "Footwear with uppers of textile materials"),
    ("6907", "Ceramic flags and paving, hearth or wall tiles"),
    (
        "7210",
        "Flat-rolled products of iron or non-alloy steel, clad, plated or coated",
    ),
    ("7214", "Other bars and rods of iron or non-alloy steel"),
    (
        "7318",
        "Screws, bolts, nuts and similar articles, of iron or steel",
    ),
    ("7604", "Aluminium bars, rods and profiles"),
    ("8415", "Air conditioning machines"),
    (
        "8418",
        "Refrigerators, freezers and other refrigerating equipment",
    ),
    (
        "8429",
        "Bulldozers, graders, mechanical shovels, excavators",
    ),
    ("8450", "Household or laundry-type washing machines"),
    (
        "8471",
        "Automatic data processing machines and units thereof",
    ),
    ("8501", "Electric motors and generators"),
    ("8507", "Electric accumulators"),
    ("8517", "Telephone sets, including smartphones"),
    ("8528", "Monitors and projectors; television receivers"),
    (
        "8544",
        "Insulated wire, cable and other electric conductors",
    ),
    (
        "8703",
        "Motor cars and other motor vehicles for the transport of persons",
    ),
    ("8708", "Parts and accessories of motor vehicles"),
    ("8711", "Motorcycles"),
    (
        "9018",
        "Instruments and appliances used in medical sciences",
    ),
    ("9401", "Seats"),
    ("9403", "Other furniture and parts thereof"),
    ("9503", "Toys"),
];

const CHAPTERS: &[(&str, &str)] = &[
    ("02", "Meat and edible meat offal"),
    (
        "03",
        "Fish and crustaceans, molluscs and other aquatic invertebrates",
    ),
    ("04", "Dairy produce; birds' eggs; natural honey"),
    ("09", "Coffee, tea, mate and spices"),
    ("10", "Cereals"),
    ("15", "Animal, vegetable or microbial fats and oils"),
    ("17", "Sugars and sugar confectionery"),
    ("22", "Beverages, spirits and vinegar"),
    (
        "25",
        "Salt; sulphur; earths, stone; plastering materials, lime and cement",
    ),
    ("30", "Pharmaceutical products"),
    ("31", "Fertilisers"),
    (
        "33",
        "Essential oils and resinoids; perfumery, cosmetic or toilet preparations",
    ),
    ("39", "Plastics and articles thereof"),
    ("40", "Rubber and articles thereof"),
    (
        "61",
        "Apparel and clothing accessories; knitted or crocheted",
    ),
    (
        "62",
        "Apparel and clothing accessories; not knitted or crocheted",
    ),
    ("64", "Footwear, gaiters and the like"),
    ("69", "Ceramic products"),
    ("72", "Iron and steel"),
    ("73", "Articles of iron or steel"),
    ("76", "Aluminium and articles thereof"),
    (
        "84",
        "Nuclear reactors, boilers, machinery and mechanical appliances",
    ),
    ("85", "Electrical machinery and equipment and parts thereof"),
    ("87", "Vehicles other than railway or tramway rolling stock"),
    (
        "90",
        "Optical, photographic, measuring, medical or surgical instruments",
    ),
    (
        "94",
        "Furniture; bedding, mattresses; lamps; prefabricated buildings",
    ),
    ("95", "Toys, games and sports requisites"),
];

/// The catalogue written for this project: 68 subheadings in 46 headings,
/// with siblings whose duty rates differ.
pub fn built_in() -> Catalogue {
    let products = BUILT_IN
        .iter()
        .map(
            |&(hs6, description, commercial, unit, unit_value, kg, qty, group)| Product {
                hs6: hs6.to_string(),
                description: description.to_string(),
                commercial: commercial_variants(commercial.split('|')),
                unit,
                unit_value,
                kg_per_unit: kg,
                typical_qty: qty,
                group,
            },
        )
        .collect::<Vec<_>>();
    let mut nomenclature = Vec::new();
    for &(code, description) in CHAPTERS {
        nomenclature.push(NomenclatureEntry {
            code: code.into(),
            description: description.into(),
            parent: None,
            level: 2,
            section: section_of(code.parse().unwrap()).into(),
        });
    }
    for &(code, description) in BUILT_IN_HEADINGS {
        nomenclature.push(entry(code, description, 4));
    }
    for p in &products {
        nomenclature.push(entry(&p.hs6, &p.description, 6));
    }
    nomenclature.sort_by(|a, b| a.code.cmp(&b.code));
    Catalogue {
        products,
        nomenclature,
    }
}

fn entry(code: &str, description: &str, level: i32) -> NomenclatureEntry {
    let parent_len = if level == 6 { 4 } else { 2 };
    NomenclatureEntry {
        code: code.into(),
        description: description.into(),
        parent: Some(code[..parent_len].to_string()),
        level,
        section: section_of(code[..2].parse().unwrap()).into(),
    }
}

/// Each phrasing as written and in upper case, the two ways declarants
/// most often type a description.
fn commercial_variants<'a>(phrasings: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut variants = Vec::new();
    for phrase in phrasings {
        let phrase = phrase.trim();
        if phrase.is_empty() {
            continue;
        }
        variants.push(phrase.to_string());
        let upper = phrase.to_uppercase();
        if upper != phrase {
            variants.push(upper);
        }
    }
    variants
}

/// Reads the HS nomenclature CSV (`section,hscode,description,parent,level`)
/// and turns every six-digit subheading into a product.
pub fn from_nomenclature(path: &Path) -> Result<Catalogue, SynthError> {
    let text = std::fs::read_to_string(path).map_err(|e| SynthError::Input {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let bad = |line: usize, message: String| SynthError::Input {
        path: path.display().to_string(),
        message: format!("line {line}: {message}"),
    };
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, h)| h.trim()).unwrap_or_default();
    if header != "section,hscode,description,parent,level" {
        return Err(bad(
            1,
            format!("header is {header:?}, expected section,hscode,description,parent,level"),
        ));
    }
    let mut nomenclature = Vec::new();
    let mut products = Vec::new();
    for (index, line) in lines {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_csv_line(line);
        let [section, code, description, parent, level] = fields.as_slice() else {
            return Err(bad(
                line_no,
                format!("expected 5 fields, found {}", fields.len()),
            ));
        };
        if code == "TOTAL" {
            // The data package's grand-total row: not a code.
            continue;
        }
        let level: i32 = level
            .parse()
            .map_err(|_| bad(line_no, format!("level {level:?} is not a number")))?;
        let valid = matches!(level, 2 | 4 | 6)
            && code.len() == level as usize
            && code.bytes().all(|b| b.is_ascii_digit());
        if !valid {
            return Err(bad(
                line_no,
                format!("{code:?} is not an HS code of level {level}"),
            ));
        }
        nomenclature.push(NomenclatureEntry {
            code: code.clone(),
            description: description.clone(),
            parent: (parent.as_str() != "TOTAL" && !parent.is_empty()).then(|| parent.clone()),
            level,
            section: section.clone(),
        });
        if level == 6 {
            products.push(product_from_nomenclature(code, description));
        }
    }
    if products.is_empty() {
        return Err(bad(0, "no six-digit subheadings".into()));
    }
    Ok(Catalogue {
        products,
        nomenclature,
    })
}

/// Minimal RFC 4180 field splitting (quoted fields, doubled quotes).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Units, prices and origins by chapter, for subheadings of the real
/// nomenclature, which carries no trade data.
fn product_from_nomenclature(code: &str, description: &str) -> Product {
    let chapter: u32 = code[..2].parse().unwrap_or(0);
    // (unit, median unit value, value per kg, typical quantity, group)
    let (unit, unit_value, value_per_kg, qty, group) = match chapter {
        1 => ("NAR", 9000.0, 15.0, 20.0, Food),
        2..=21 | 23 => ("KGM", 18.0, 18.0, 10000.0, Food),
        22 => ("LTR", 14.0, 12.0, 8000.0, Food),
        24 => ("KGM", 60.0, 60.0, 2000.0, Food),
        25..=27 => ("KGM", 1.5, 1.5, 50000.0, Building),
        28..=38 => ("KGM", 30.0, 30.0, 3000.0, Chemical),
        39 | 40 => ("KGM", 16.0, 16.0, 5000.0, Consumer),
        41..=43 => ("KGM", 90.0, 90.0, 800.0, Consumer),
        44..=49 => ("KGM", 9.0, 9.0, 10000.0, Building),
        50..=60 => ("KGM", 45.0, 45.0, 3000.0, Textile),
        61..=63 => ("NAR", 60.0, 200.0, 2000.0, Textile),
        64 => ("PR", 150.0, 180.0, 600.0, Consumer),
        65..=67 => ("NAR", 35.0, 120.0, 1500.0, Consumer),
        68..=70 => ("KGM", 7.0, 7.0, 15000.0, Building),
        71 => ("KGM", 3000.0, 3000.0, 20.0, Consumer),
        72..=83 => ("KGM", 12.0, 12.0, 15000.0, Steel),
        84 => ("NAR", 4000.0, 60.0, 60.0, Machinery),
        85 => ("NAR", 900.0, 150.0, 400.0, Electronics),
        86..=89 => ("NAR", 90000.0, 70.0, 8.0, Vehicles),
        90..=92 => ("NAR", 1500.0, 400.0, 150.0, Electronics),
        _ => ("NAR", 250.0, 40.0, 500.0, Consumer),
    };
    // Spread prices within a chapter deterministically by code, so sibling
    // subheadings are not all priced alike (0.35x to 2.8x).
    let spread = (code
        .bytes()
        .fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        % 1000) as f64
        / 1000.0;
    let unit_value = unit_value * (0.35f64).powf(1.0 - spread) * (2.8f64).powf(spread);
    let kg_per_unit = if unit == "KGM" {
        1.0
    } else {
        (unit_value / value_per_kg).max(0.01)
    };
    let clean = description.trim().trim_end_matches('.');
    // Declarants write the goods, not the nomenclature's leading qualifiers:
    // "Horses; live, pure-bred breeding animals" -> "live pure-bred breeding horses"
    let (head, rest) = clean.split_once(';').unwrap_or((clean, ""));
    let rest = rest.trim().trim_start_matches("n.e.c. in heading").trim();
    let reordered = if rest.is_empty() {
        head.to_string()
    } else {
        format!("{rest} {}", head.to_lowercase())
    };
    Product {
        hs6: code.to_string(),
        description: description.to_string(),
        commercial: commercial_variants([clean, reordered.as_str()].into_iter()),
        unit,
        unit_value,
        kg_per_unit,
        typical_qty: qty,
        group,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalogue_is_well_formed() {
        let c = built_in();
        assert_eq!(c.products.len(), BUILT_IN.len());
        for p in &c.products {
            assert_eq!(p.hs6.len(), 6, "{}", p.hs6);
            assert!(
                c.nomenclature
                    .iter()
                    .any(|e| e.code == p.hs4() && e.level == 4),
                "heading of {} missing",
                p.hs6
            );
            assert!(
                c.nomenclature
                    .iter()
                    .any(|e| e.code == p.chapter() && e.level == 2),
                "chapter of {} missing",
                p.hs6
            );
            assert!(p.commercial.len() >= 2 && p.unit_value > 0.0);
        }
        let mut codes: Vec<_> = c.products.iter().map(|p| &p.hs6).collect();
        codes.dedup();
        assert_eq!(codes.len(), c.products.len());
    }

    #[test]
    fn csv_fields_with_quotes() {
        assert_eq!(
            split_csv_line(r#"I,0101,"Horses, asses; ""live""",01,4"#),
            vec!["I", "0101", "Horses, asses; \"live\"", "01", "4"]
        );
    }

    #[test]
    fn sections_by_chapter() {
        assert_eq!(section_of(1), "I");
        assert_eq!(section_of(15), "III");
        assert_eq!(section_of(72), "XV");
        assert_eq!(section_of(85), "XVI");
        assert_eq!(section_of(97), "XXI");
    }
}
